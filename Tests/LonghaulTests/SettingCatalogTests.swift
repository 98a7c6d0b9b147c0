import ArgumentParser
import FastCGI
import Foundation
import LLM
import Longhaul
import RedisStore
import Tasks
import Testing

@testable import LonghaulServer

/// Each default is written once, on a configuration property; `--help` and the README are made from it.
@Suite(.timeLimit(.minutes(2))) struct SettingCatalogTests {
    private static let readmePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("README.md").path

    @Test func theReadmesConfigurationTableIsTheCatalogs() throws {
        let readme = try String(contentsOfFile: Self.readmePath, encoding: .utf8)
        let begin = "<!-- settings table: made from SettingCatalog.markdownTable; SettingCatalogTests checks it -->\n"
        let end = "\n<!-- end of settings table -->"
        let start = try #require(readme.range(of: begin), "README.md lacks the settings table's opening marker")
        let stop = try #require(readme.range(of: end, range: start.upperBound..<readme.endIndex))
        let table = String(readme[start.upperBound..<stop.lowerBound])
        #expect(
            table == SettingCatalog.markdownTable,
            "README.md's configuration table differs from the catalog; replace it with:\n\(SettingCatalog.markdownTable)"
        )
    }

    @Test func helpListsEveryCatalogFlagWithItsDefaultAndNoOther() {
        let help = LonghaulCommand.helpMessage(columns: 100_000)
        let catalogFlags = Set(SettingCatalog.all.compactMap(\.flag))
        let helpFlags = Set(
            help.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "," })
                .filter { $0.hasPrefix("--") && $0.count > 2 }
                .map { String($0.dropFirst(2).prefix { $0.isLetter || $0 == "-" }) })
        #expect(helpFlags.subtracting(["help"]) == catalogFlags)
        for setting in SettingCatalog.all where setting.flag != nil {
            #expect(help.contains(setting.help), "--help lacks \(setting.help)")
        }
    }

    @Test func withNoFlagsEverySettingIsItsStructsDefault() throws {
        let envFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("longhaul-settings-\(UUID().uuidString).env").path
        try "ANTHROPIC_API_KEY=test-key\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: envFile) }
        let settings = try Settings(command: LonghaulCommand.parse(["--env-file", envFile]))
        let defaults = Settings()
        let table = TaskTable.Configuration()
        let llm = LLMConfiguration()
        #expect(settings.threads == FastCGIServer.Configuration().threadCount)
        #expect(settings.table.maxInFlight == table.maxInFlight)
        #expect(settings.table.maxQueued == table.maxQueued)
        #expect(settings.table.taskTimeout == table.taskTimeout)
        #expect(settings.table.idempotencyWindow == table.idempotencyWindow)
        #expect(settings.table.maxTasksPerClient == table.maxTasksPerClient)
        #expect(settings.llm.model == llm.model)
        #expect(settings.llm.baseURL == llm.baseURL)
        #expect(settings.llm.maxTokens == llm.maxTokens)
        #expect(settings.llm.maxRetries == llm.maxRetries)
        #expect(settings.llm.connectTimeout == llm.connectTimeout)
        #expect(settings.llm.idleTimeout == llm.idleTimeout)
        #expect(settings.app.maxQueryBytes == LonghaulApp.Configuration().maxQueryBytes)
        #expect(settings.resultTTL == defaults.resultTTL)
        #expect(settings.shutdownGrace == defaults.shutdownGrace)
        #expect(settings.logLevel == defaults.logLevel)
        #expect(settings.accessLog == defaults.accessLog)
        #expect(settings.redis == nil)
    }

    @Test func aFlagWinsOverTheDefault() throws {
        let envFile = FileManager.default.temporaryDirectory
            .appendingPathComponent("longhaul-settings-\(UUID().uuidString).env").path
        try "ANTHROPIC_API_KEY=test-key\nLONGHAUL_MAX_QUEUED=7\n".write(
            toFile: envFile, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: envFile) }
        let settings = try Settings(
            command: LonghaulCommand.parse([
                "--env-file", envFile, "--threads", "3", "--lease-timeout", "4",
                "--store", "redis://127.0.0.1:6379/0",
            ]))
        #expect(settings.threads == 3)
        #expect(settings.table.maxQueued == 7)
        #expect(settings.redis?.leaseTimeout == .seconds(4))
        #expect(settings.redis?.timeout == .seconds(1))
    }
}
