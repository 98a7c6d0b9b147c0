import FastCGI
import Synchronization
import Tasks

extension LonghaulApp {
    /// The operations routes: `GET /ping`, `GET /status` (php-fpm's text, or JSON with `?json`) and, when the
    /// process renders metrics, `GET /metrics` (Prometheus text).
    static func addOperationsRoutes(to router: inout Router, context: AppContext, hub: TaskChangeHub) {
        let operations = context.configuration.operations
        let table = context.table
        let counters = context.counters

        @Sendable func snapshot() -> StatusSnapshot {
            StatusSnapshot(
                start: operations.processStart, statistics: operations.serverStatistics(),
                counts: try? table.store.countsByStatus(), runningHere: table.runningCount,
                maxInFlight: table.configuration.maxInFlight, maxQueued: table.configuration.maxQueued,
                queueFull: counters.queueFull.load(ordering: .relaxed), streams: hub.watcherCount,
                store: operations.storeName)
        }

        router.add("GET", "/ping") { _ in .text("pong\n") }

        router.add("GET", "/status") { request throws(HTTPError) in
            let status = snapshot()
            let wantsJSON = try request.queryParameters().contains { $0.name == "json" }
            return wantsJSON ? .json(status.json) : .text(status.text)
        }

        if let metricsText = operations.metricsText {
            router.add("GET", "/metrics") { _ in
                snapshot().recordGauges()
                return Response(
                    status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", text: metricsText(),
                    headers: [HeaderField("Cache-Control", "no-store")])
            }
        }
    }
}
