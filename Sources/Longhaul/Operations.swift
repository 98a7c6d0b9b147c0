public import FastCGI
public import Foundation
import CoreMetrics
import Metrics
import Synchronization
import Tasks

#if canImport(Glibc)
    import Glibc
#endif

/// What the operations routes (`/ping`, `/status`, `/metrics`) and the access log need from the process.
public struct OperationsConfiguration: Sendable {
    /// The FastCGI server's counters, when the app runs in one.
    public var serverStatistics: @Sendable () -> FastCGIServer.Statistics? = { nil }
    /// Renders the process's metrics in the Prometheus text format, or `nil` for no `/metrics`.
    public var metricsText: (@Sendable () -> String)?
    /// When the process started.
    public var processStart = Date()
    /// The store's name for the status page (`memory`, or the Redis URL without password).
    public var storeName = "memory"
    /// Whether each request is logged (at `info`) with its route, status, duration and task id.
    public var accessLog = false

    public init() {}
}

/// Counters the routes keep for the status page and metrics.
final class AppCounters: Sendable {
    /// Times `generate` was refused because the queue was full.
    let queueFull = Atomic<Int>(0)
    /// Times a client was refused because it had too many tasks in progress.
    let clientLimited = Atomic<Int>(0)

    static let queueFullCounter = Counter(label: "longhaul_queue_full_total")
}

/// A point-in-time view of the process and the task table.
struct StatusSnapshot {
    var start: Date
    var statistics: FastCGIServer.Statistics?
    var counts: [TaskStatus: Int]?
    var runningHere: Int
    var maxInFlight: Int
    var maxQueued: Int
    var queueFull: Int
    var streams: Int
    var store: String
    /// Open file descriptors and OS threads of this process (Linux `/proc`; `nil` elsewhere or on failure), so
    /// that a leak shows on the status page and in the metrics.
    var openFileDescriptors: Int? = ProcessResources.openFileDescriptors()
    var osThreads: Int? = ProcessResources.threads()

    var json: JSONValue {
        var members: [(String, JSONValue)] = [
            ("pool", .string("longhaul")),
            ("process_manager", .string("static")),
            ("start_time", .string(start.rfc3339)),
            ("start_since", .int(Int(Date().timeIntervalSince(start)))),
            ("store", .string(store)),
        ]
        if let statistics {
            members += [
                ("accepted_conn", .int(statistics.acceptedRequests)),
                ("active_threads", .int(statistics.busyThreads)),
                ("idle_threads", .int(statistics.idleThreads)),
                ("total_threads", .int(statistics.busyThreads + statistics.idleThreads)),
                ("active_streams", .int(statistics.activeStreams)),
            ]
        }
        members += [
            ("llm_calls_in_flight", .int(runningHere)),
            ("max_in_flight", .int(maxInFlight)),
            ("queue_depth", .int(counts?[.queued] ?? 0)),
            ("max_queued", .int(maxQueued)),
            ("queue_full_total", .int(queueFull)),
            ("event_stream_watchers", .int(streams)),
        ]
        if let openFileDescriptors { members.append(("open_fds", .int(openFileDescriptors))) }
        if let osThreads { members.append(("os_threads", .int(osThreads))) }
        if let counts {
            members.append(
                ("tasks", .object(TaskStatus.allCases.map { ($0.rawValue, .int(counts[$0] ?? 0)) })))
        } else {
            members.append(("tasks", .null))
            members.append(("store_error", .string("the task store is unavailable")))
        }
        return .object(members)
    }

    /// php-fpm's plain format: `name: value` lines.
    var text: String {
        guard case .object(let members) = json else { return "" }
        var out = ""
        for (name, value) in members {
            let label = name.replacingOccurrences(of: "_", with: " ")
            switch value {
            case .object(let inner):
                for (key, innerValue) in inner { out += "\(label) \(key): \(innerValue.serialized)\n" }
            case .string(let text):
                out += "\(label): \(text)\n"
            default:
                out += "\(label): \(value.serialized)\n"
            }
        }
        return out
    }

    /// Sets the gauges that describe the current state before the metrics are rendered.
    func recordGauges() {
        Gauge(label: "longhaul_process_start_time_seconds").record(start.timeIntervalSince1970)
        if let counts {
            for status in TaskStatus.allCases {
                Gauge(label: "longhaul_tasks", dimensions: [("state", status.rawValue)]).record(counts[status] ?? 0)
            }
            Gauge(label: "longhaul_queue_depth").record(counts[.queued] ?? 0)
        }
        Gauge(label: "longhaul_llm_calls_in_flight").record(runningHere)
        Gauge(label: "longhaul_event_stream_watchers").record(streams)
        if let openFileDescriptors { Gauge(label: "longhaul_process_open_fds").record(openFileDescriptors) }
        if let osThreads { Gauge(label: "longhaul_process_threads").record(osThreads) }
        if let statistics {
            Gauge(label: "longhaul_fastcgi_accepted_requests").record(statistics.acceptedRequests)
            Gauge(label: "longhaul_fastcgi_threads", dimensions: [("state", "busy")]).record(statistics.busyThreads)
            Gauge(label: "longhaul_fastcgi_threads", dimensions: [("state", "idle")]).record(statistics.idleThreads)
            Gauge(label: "longhaul_fastcgi_active_streams").record(statistics.activeStreams)
        }
    }
}

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
            return Int(line.dropFirst("Threads:".count).trimmingCharacters(in: .whitespaces))
        }
        return nil
    }
}
