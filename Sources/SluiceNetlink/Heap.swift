import CNftnl

/// glibc's heap, for a long-lived process that holds a large state built on several threads.
public enum Heap {
    /// At most `arenas` malloc arenas (glibc's default is eight per core). Call it before
    /// threads allocate.
    public static func limitArenas(_ arenas: Int) {
        _ = sluice_malloc_arena_max(Int32(arenas))
    }

    /// Returns the free pages of every arena to the OS (`malloc_trim(0)`).
    public static func trim() {
        _ = sluice_malloc_trim()
    }
}
