import CNftnl

/// glibc's heap, for a long-lived process that holds a large state built on several threads.
enum Heap {
    /// Returns the free pages of every arena to the OS (`malloc_trim(0)`).
    static func trim() {
        _ = sluice_malloc_trim()
    }
}
