import Curl
import Dispatch
import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import LonghaulLLM
import Metrics
import Prometheus
import RedisStore
import ServiceLifecycle
import Tasks

/// Wires the parts together, serves until SIGTERM, SIGINT or SIGQUIT, then stops in order (one `ServiceGroup`, run by
/// ``LonghaulRunner``).
struct Server {
    let settings: Settings
    let logger: Logger

    func run() async throws {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2),
            .seconds(5), .seconds(10), .seconds(20), .seconds(30), .seconds(60), .seconds(120),
        ]
        MetricsSystem.bootstrap(factory)
        signal(SIGPIPE, SIG_IGN)
        Self.raiseFileLimit(logger: logger)
        var serverConfiguration = FastCGIServer.Configuration()
        serverConfiguration.listener = settings.listener
        serverConfiguration.threadCount = settings.threads
        // FCGX_Init (inside) installs a SIGTERM handler that only sets a flag; the runner's, after it, replaces it.
        let server = try FastCGIServer(configuration: serverConfiguration, logger: logger)
        let runner = LonghaulRunner(server: server, shutdownGrace: settings.shutdownGrace, logger: logger)

        var httpConfiguration = CurlHTTPClient.Configuration()
        httpConfiguration.caInfoPath = settings.caFile
        // One idle connection kept per call that may run at once: over HTTP/1.1 (plain http://, or a provider
        // without HTTP/2) each call in flight holds a connection, and a smaller cache closes most of them when their
        // calls end, so that the next calls pay a new connect (and TLS handshake) each. libcurl closes idle
        // connections after two minutes.
        httpConfiguration.maxCachedConnections = max(httpConfiguration.maxCachedConnections, settings.table.maxInFlight)
        let http = CurlHTTPClient(configuration: httpConfiguration, logger: logger)
        let llm = HTTPLLMClient(configuration: settings.llm, http: http, logger: logger)
        let store: any TaskStore
        // Services the jobs and the table depend on: they start first and stop after the table has drained.
        var dependencies: [any Service] = [CurlClientService(client: http)]
        if let redis = settings.redis {
            let shared = RedisTaskStore(configuration: redis, logger: logger)
            do {
                try shared.ping()
            } catch {
                // Not fatal: requests get 503 until Redis answers, and the store reconnects by itself.
                logger.warning(
                    "Redis does not answer yet", metadata: ["store.url": "\(redis.url)", "error.message": "\(error)"])
            }
            store = shared
            dependencies.append(shared.changeFeed)
        } else {
            store = MemoryTaskStore(resultTTL: settings.resultTTL)
        }
        let table = TaskTable(
            store: store, jobs: [LLMJob.kind: LLMJob(client: llm)], configuration: settings.table, logger: logger)
        var appConfiguration = settings.app
        appConfiguration.operations.serverStatistics = { server.statistics }
        appConfiguration.operations.metricsText = { registry.emitToString() }
        appConfiguration.operations.processStart = Date()
        appConfiguration.operations.storeName = settings.redis.map { "\($0.url)" } ?? "memory"
        appConfiguration.operations.accessLog = settings.accessLog
        let app = LonghaulApp(
            table: table, configuration: appConfiguration, presentation: .llm, logger: logger, addRoutes: LLMRoutes.add)

        logger.notice(
            "longhaul started",
            metadata: [
                "fastcgi.listener": "\(Self.describe(settings.listener))", "fastcgi.threads": "\(settings.threads)",
                "llm.provider": "\(settings.llm.provider.rawValue)", "llm.base_url": "\(settings.llm.baseURL)",
                "llm.model": "\(settings.llm.model)", "tasks.max_in_flight": "\(settings.table.maxInFlight)",
                "tasks.max_queued": "\(settings.table.maxQueued)", "process.pid": "\(getpid())",
                "store.backend": "\(settings.redis.map { "\($0.url)" } ?? "memory")",
            ])
        try await runner.run(app, dependencies: dependencies)
        logger.notice("longhaul stopped")
    }

    /// Every upstream transfer and every open stream holds a descriptor; 1,024 is far too few for thousands.
    private static func raiseFileLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let previous = limit.rlim_cur
        limit.rlim_cur = limit.rlim_max
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 {
            logger.debug(
                "raised the open file limit",
                metadata: ["fd_limit.from": "\(previous)", "fd_limit.to": "\(limit.rlim_cur)"])
        }
    }

    private static func describe(_ listener: FastCGIServer.Listener) -> String {
        switch listener {
        case .inherited: "fd 0"
        case .unixSocket(let path, let mode): "\(path) (mode \(String(mode, radix: 8)))"
        }
    }
}
