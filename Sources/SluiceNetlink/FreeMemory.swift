import CNftnl

/// Hands the C heap's free pages back to the operating system (glibc `malloc_trim(0)`, every
/// arena). After a large transient peak (a cold start, a relist of every object, a backlog
/// of thousands of watch events applied at once) the freed pages otherwise stay resident:
/// each thread's arena keeps what it freed, so the process's RSS climbs a step with every
/// such peak that lands in another arena and never comes down. Costs a walk over the heap
/// (milliseconds at 100k services): call it after large work, not after every small change.
public enum FreeMemory {
    /// Returns true if any memory was released.
    @discardableResult
    public static func trim() -> Bool { sluice_malloc_trim() != 0 }
}
