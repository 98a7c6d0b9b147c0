import Foundation
import Testing

@testable import Longhaul

@Suite(.timeLimit(.minutes(1))) struct JSONValueTests {
    @Test func stringsEscapeWhatJSONAndHTMLNeedAndKeepTheRest() {
        let text = "a\"b\\c\nd\re\tf<g>h&i\u{01}j\u{1F}k\u{2028}l\u{2029}m é 日本 🎉 \u{7F}"
        let expected =
            #""a\"b\\c\nd\re\tf\u003cg\u003eh\u0026i\u0001j\u001fk\u2028l\u2029m é 日本 🎉 \#u{7F}""#
        #expect(JSONValue.string(text).serialized == expected)
    }

    @Test func serializedTextParsesBackToTheSameValues() throws {
        let texts = [
            "", "plain", "\u{0}\u{8}\u{C}", "\u{E2}\u{80}", "x\u{2027}\u{202A}", String(repeating: "ab<", count: 500),
        ]
        for text in texts {
            let value = JSONValue.object([("text", .string(text)), ("n", .int(-42)), ("ok", .bool(true)), ("z", .null)])
            let parsed = try JSONSerialization.jsonObject(with: Data(value.serialized.utf8)) as? [String: Any]
            #expect(parsed?["text"] as? String == text)
            #expect(parsed?["n"] as? Int == -42)
        }
    }

    @Test func keysKeepTheirOrderAndArraysNest() {
        let value = JSONValue.object([("b", .array([.int(1), .double(1.5), .null])), ("a", .object([]))])
        #expect(value.serialized == #"{"b":[1,1.5,null],"a":{}}"#)
        var bytes: [UInt8] = Array("x".utf8)
        value.write(to: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == "x" + value.serialized)
    }
}
