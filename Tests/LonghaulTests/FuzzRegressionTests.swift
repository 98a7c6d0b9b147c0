import Foundation
import LonghaulFuzzing
import Testing

/// Replays the fuzz targets' seed corpora (`Fuzz/Corpus/<target>/`) and the inputs that once broke them
/// (`Fuzz/Regressions/<target>/`) through the same checks the libFuzzer binaries run (`LonghaulFuzzing`).
@Suite(.timeLimit(.minutes(2))) struct FuzzRegressionTests {
    /// The repository root, from this file's path (Tests/LonghaulTests/FuzzRegressionTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The files of a folder, sorted; none when it does not exist.
    static func inputs(in folder: String, for target: FuzzTarget) throws -> [URL] {
        let directory = root.appendingPathComponent(folder).appendingPathComponent(target.name)
        guard FileManager.default.fileExists(atPath: directory.path) else { return [] }
        return try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { !$0.lastPathComponent.hasPrefix(".") && $0.lastPathComponent != "README.md" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
    }

    static func replay(_ files: [URL], through target: FuzzTarget) throws {
        for file in files {
            let bytes = try [UInt8](Data(contentsOf: file))
            do {
                try target.check(bytes)
            } catch {
                Issue.record("\(file.lastPathComponent): \(error)")
            }
        }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedCorpusKeepsTheInvariants(_ target: FuzzTarget) throws {
        let files = try Self.inputs(in: "Fuzz/Corpus", for: target)
        #expect(!files.isEmpty, "no seeds in Fuzz/Corpus/\(target.name)")
        try Self.replay(files, through: target)
    }

    @Test(arguments: FuzzTarget.allCases)
    func savedCrashesStayFixed(_ target: FuzzTarget) throws {
        try Self.replay(try Self.inputs(in: "Fuzz/Regressions", for: target), through: target)
    }

    @Test func theEmptyInputKeepsTheInvariants() {
        for target in FuzzTarget.allCases {
            #expect(throws: Never.self) { try target.check([UInt8]()) }
        }
    }
}
