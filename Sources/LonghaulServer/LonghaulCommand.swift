import ArgumentParser
import Curl
import Dispatch
import FastCGI
import Foundation
import LLM
import Logging
import Longhaul
import Tasks

/// `longhaul`: the FastCGI backend. Flags win over environment variables, which win over the `.env` file.
@main
struct LonghaulCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "longhaul",
        abstract: "Longhaul: a FastCGI backend that runs slow LLM calls as tasks for pages behind nginx.",
        discussion: """
            Without --socket, longhaul serves the listen socket it inherits on file descriptor 0 (spawn-fcgi, systemd \
            socket units). Every option falls back to the environment variable named in its help, then to a .env \
            file, then to its default. ANTHROPIC_API_KEY (or LONGHAUL_API_KEY) is read only from the environment or \
            the .env file, never from the command line, and is never logged.
            """)

    @Option(help: ArgumentHelp(SettingCatalog.socket.help))
    var socket: String?

    @Option(help: ArgumentHelp(SettingCatalog.socketMode.help))
    var socketMode: String?

    @Option(help: ArgumentHelp(SettingCatalog.threads.help))
    var threads: Int?

    @Option(help: ArgumentHelp(SettingCatalog.basePath.help))
    var basePath: String?

    @Option(help: ArgumentHelp(SettingCatalog.provider.help))
    var provider: String?

    @Option(help: ArgumentHelp(SettingCatalog.baseURL.help))
    var baseURL: String?

    @Option(help: ArgumentHelp(SettingCatalog.model.help))
    var model: String?

    @Option(help: ArgumentHelp(SettingCatalog.maxTokens.help))
    var maxTokens: Int?

    @Option(help: ArgumentHelp(SettingCatalog.maxRetries.help))
    var maxRetries: Int?

    @Option(help: ArgumentHelp(SettingCatalog.connectTimeout.help))
    var connectTimeout: Double?

    @Option(help: ArgumentHelp(SettingCatalog.idleTimeout.help))
    var idleTimeout: Double?

    @Option(help: ArgumentHelp(SettingCatalog.taskTimeout.help))
    var taskTimeout: Double?

    @Option(help: ArgumentHelp(SettingCatalog.caFile.help))
    var caFile: String?

    @Option(help: ArgumentHelp(SettingCatalog.maxInFlight.help))
    var maxInFlight: Int?

    @Option(help: ArgumentHelp(SettingCatalog.maxQueued.help))
    var maxQueued: Int?

    @Option(help: ArgumentHelp(SettingCatalog.maxTasksPerClient.help))
    var maxTasksPerClient: Int?

    @Option(help: ArgumentHelp(SettingCatalog.idempotencyWindow.help))
    var idempotencyWindow: Double?

    @Option(help: ArgumentHelp(SettingCatalog.resultTTL.help))
    var resultTTL: Double?

    @Option(help: ArgumentHelp(SettingCatalog.maxQueryBytes.help))
    var maxQueryBytes: Int?

    @Option(help: ArgumentHelp(SettingCatalog.store.help))
    var store: String?

    @Option(help: ArgumentHelp(SettingCatalog.redisWaitReplicas.help))
    var redisWaitReplicas: Int?

    @Option(help: ArgumentHelp(SettingCatalog.leaseTimeout.help))
    var leaseTimeout: Double?

    @Option(help: ArgumentHelp(SettingCatalog.maxAttempts.help))
    var maxAttempts: Int?

    @Option(help: ArgumentHelp(SettingCatalog.shutdownGrace.help))
    var shutdownGrace: Double?

    @Option(help: ArgumentHelp(SettingCatalog.accessLog.help))
    var accessLog: String?

    @Option(help: ArgumentHelp(SettingCatalog.logLevel.help))
    var logLevel: String?

    @Option(help: ArgumentHelp(SettingCatalog.envFile.help))
    var envFile: String?

    /// Limits glibc's malloc arenas before anything else runs (``MallocArenas``), then parses and runs.
    static func main() async {
        MallocArenas.limit()
        await main(nil)
    }

    func run() async throws {
        let settings = try Settings(command: self)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = settings.logLevel
            return handler
        }
        let logger = Logger(label: "longhaul")
        try await Server(settings: settings, logger: logger).run()
    }
}
