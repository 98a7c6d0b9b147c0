import CoreMetrics
import FastCGI
import Foundation
import Tasks

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
    /// The C heap's bytes in use and held from the system (glibc), so that a leak (in use grows) can be told from
    /// allocator fragmentation (only held grows).
    var heap: (inUse: Int, held: Int)? = ProcessResources.heap()

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
            ("tasks_running_here", .int(runningHere)),
            ("max_in_flight", .int(maxInFlight)),
            ("queue_depth", .int(counts?[.queued] ?? 0)),
            ("max_queued", .int(maxQueued)),
            ("queue_full_total", .int(queueFull)),
            ("event_stream_watchers", .int(streams)),
        ]
        if let openFileDescriptors { members.append(("open_fds", .int(openFileDescriptors))) }
        if let osThreads { members.append(("os_threads", .int(osThreads))) }
        if let heap {
            members.append(("heap_in_use_bytes", .int(heap.inUse)))
            members.append(("heap_held_bytes", .int(heap.held)))
        }
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
        Gauge(label: "longhaul_tasks_running_here").record(runningHere)
        Gauge(label: "longhaul_event_stream_watchers").record(streams)
        if let openFileDescriptors { Gauge(label: "longhaul_process_open_fds").record(openFileDescriptors) }
        if let osThreads { Gauge(label: "longhaul_process_threads").record(osThreads) }
        if let heap {
            Gauge(label: "longhaul_process_heap_bytes", dimensions: [("state", "in_use")]).record(heap.inUse)
            Gauge(label: "longhaul_process_heap_bytes", dimensions: [("state", "held")]).record(heap.held)
        }
        if let statistics {
            Gauge(label: "longhaul_fastcgi_accepted_requests").record(statistics.acceptedRequests)
            Gauge(label: "longhaul_fastcgi_threads", dimensions: [("state", "busy")]).record(statistics.busyThreads)
            Gauge(label: "longhaul_fastcgi_threads", dimensions: [("state", "idle")]).record(statistics.idleThreads)
            Gauge(label: "longhaul_fastcgi_active_streams").record(statistics.activeStreams)
        }
    }
}
