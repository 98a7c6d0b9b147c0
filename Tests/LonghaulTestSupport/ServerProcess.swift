public import Foundation

/// Starts a server process with its output discarded (posix_spawn, not Foundation.Process, whose objects are
/// never freed once the test reaps the process itself).
/// - Returns: its pid.
public func spawnServer(_ path: String, _ arguments: [String]) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
    let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
    defer { for pointer in argv { free(pointer) } }
    var pid: pid_t = 0
    let status = posix_spawn(&pid, path, &actions, nil, argv, environ)
    guard status == 0 else { throw CancellationError() }
    return pid
}

/// Whether a server just spawned is still running a moment later. A random port may be taken (by another server,
/// or as the local port of an outgoing connection: 40000-60999 lies in Linux's ephemeral range); redis-server then
/// exits at once ("bind: Address already in use"), and the caller tries another port.
/// - Parameter pid: the server, reaped here if it has exited.
public func stillRunning(_ pid: pid_t) -> Bool {
    for _ in 0..<10 {
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        Thread.sleep(forTimeInterval: 0.05)
    }
    return true
}
