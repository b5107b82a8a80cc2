import Dispatch

/// A serial task executor on its own dispatch queue, outside Swift's cooperative thread pool.
///
/// The daemon runs under this executor preference (`withTaskExecutorPreference`), so its
/// actors and tasks keep running when the cooperative pool (two threads on a 2-core node)
/// is busy with blocking work elsewhere in the process, and its own blocking netlink calls
/// never occupy a cooperative thread.
public final class DaemonExecutor: TaskExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    public init(label: String = "sluice.daemon") {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }
}

/// A serial executor on its own dispatch queue: an actor that blocks in system calls (the
/// sync loop's commits) runs here, so the tasks that feed it keep running meanwhile.
final class QueueExecutor: SerialExecutor, @unchecked Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label, qos: .userInitiated)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    func asUnownedSerialExecutor() -> UnownedSerialExecutor { UnownedSerialExecutor(ordinary: self) }
}
