import FastCGI
import Foundation
import LonghaulTestSupport
import Testing

/// `GET /api/openapi.json` serves the document generated from `openapi.yaml` (the end-to-end suite checks the two
/// match, and every API answer against it).
@Suite(.timeLimit(.minutes(2))) struct OpenAPIDocumentTests {
    private func document(_ answer: AppHarness.Answer) throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(answer.text.utf8))
        return try #require(object as? [String: Any])
    }

    @Test func theDocumentIsServedAsJSON() throws {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("GET", "/api/openapi.json")
        #expect(answer.status == 200)
        #expect(answer.header("Content-Type") == "application/json")
        let document = try document(answer)
        #expect((document["openapi"] as? String)?.hasPrefix("3.1") == true)
        let paths = try #require(document["paths"] as? [String: Any])
        for path in ["/api/tasks", "/api/tasks/{id}", "/api/tasks/{id}/events"] {
            #expect(paths[path] != nil, "\(path) is described")
        }
        #expect((document["servers"] as? [[String: Any]])?.first?["url"] as? String == "/")
    }

    @Test func underABasePathTheServersNameIt() throws {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []), basePath: "/tools/ask")
        let answer = harness.send("GET", "/tools/ask/api/openapi.json")
        #expect(answer.status == 200)
        let document = try document(answer)
        #expect((document["servers"] as? [[String: Any]])?.first?["url"] as? String == "/tools/ask")
        #expect((document["paths"] as? [String: Any])?["/api/tasks"] != nil)
    }

    @Test func onlyGetIsAllowed() {
        let harness = AppHarness(client: ScriptedLLMClient(pieces: []))
        let answer = harness.send("POST", "/api/openapi.json", body: "{}", contentType: "application/json")
        #expect(answer.status == 405)
    }
}
