import StandardExtensions

#if canImport(Glibc)
    import CMalloc
    import Glibc
#endif

/// The process's own resources, read from Linux's `/proc/self` (a few system calls, no allocation per entry).
/// Everything answers `nil` where `/proc` is missing or unreadable.
enum ProcessResources {
    /// Open file descriptors: the entries of `/proc/self/fd`, less the one this count opens to read it.
    static func openFileDescriptors() -> Int? {
        #if os(Linux)
            guard let directory = opendir("/proc/self/fd") else { return nil }
            defer { closedir(directory) }
            var count = 0
            while let entry = readdir(directory) {
                let isDot = withUnsafeBytes(of: entry.pointee.d_name) { name in
                    name[0] == UInt8(ascii: ".") && (name[1] == 0 || (name[1] == UInt8(ascii: ".") && name[2] == 0))
                }
                if !isDot { count += 1 }
            }
            return max(0, count - 1)
        #else
            return nil
        #endif
    }

    /// The C heap (glibc's `mallinfo2`, summed over every arena): the bytes the program holds allocated, and the
    /// bytes the allocator has taken from the system for them. Far more held than in use after a burst is
    /// fragmentation the allocator keeps for the next one, not a leak; in use growing from one quiet moment to the
    /// next is a leak.
    static func heap() -> (inUse: Int, held: Int)? {
        #if canImport(Glibc)
            let info = mallinfo2()
            return (inUse: Int(info.uordblks + info.hblkhd), held: Int(info.arena + info.hblkhd))
        #else
            return nil
        #endif
    }

    /// OS threads: the `Threads:` line of `/proc/self/status`.
    static func threads() -> Int? {
        #if os(Linux)
            let fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { return nil }
            defer { close(fd) }
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while bytes.count < 1 << 16 {
                let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { break }
                bytes += buffer[..<count]
            }
            return threads(inStatus: String(decoding: bytes, as: UTF8.self))
        #else
            return nil
        #endif
    }

    /// The number on the `Threads:` line of a `/proc/PID/status` text.
    static func threads(inStatus status: String) -> Int? {
        for line in status.split(separator: "\n") where line.hasPrefix("Threads:") {
            return Int(line.dropFirst("Threads:".count).trimmingWhitespace())
        }
        return nil
    }
}
