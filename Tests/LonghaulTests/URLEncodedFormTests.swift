import Longhaul
import Testing

/// The `application/x-www-form-urlencoded` decoder behind form bodies and query strings.
@Suite(.timeLimit(.minutes(2))) struct URLEncodedFormTests {
    private static func pairs(_ text: String) throws -> [String] {
        try URLEncodedForm.decode(text).map { "\($0.name)=\($0.value)" }
    }

    @Test func pairsComeInOrderWithRepeatedNamesKept() throws {
        #expect(try Self.pairs("a=1&b=2&a=3") == ["a=1", "b=2", "a=3"])
    }

    @Test(arguments: [
        ("q=hello+world", "q=hello world"), ("q=a%2Bb%26c%3Dd", "q=a+b&c=d"), ("q=%E2%9C%93", "q=✓"),
        ("q=%e2%9c%93", "q=✓"), ("q=", "q="), ("q", "q="), ("=v", "=v"), ("q=a=b", "q=a=b"),
    ])
    func percentEncodingAndPlusAreDecoded(encoded: String, decoded: String) throws {
        #expect(try Self.pairs(encoded) == [decoded])
    }

    @Test func emptyPiecesAreSkipped() throws {
        #expect(try Self.pairs("&&a=1&&") == ["a=1"])
        #expect(try Self.pairs("").isEmpty)
    }

    @Test(arguments: ["q=%", "q=%4", "q=%zz", "q=%4g", "%=1"])
    func brokenPercentEncodingIsRefused(encoded: String) {
        #expect(throws: URLEncodedForm.DecodingError.invalidPercentEncoding) { try URLEncodedForm.decode(encoded) }
    }

    @Test(arguments: ["q=%FF", "q=%C3", "%80=x", "q=%ED%A0%80"])
    func bytesThatAreNotUTF8AreRefused(encoded: String) {
        #expect(throws: URLEncodedForm.DecodingError.notUTF8) { try URLEncodedForm.decode(encoded) }
    }

    @Test func bytesAndTextGiveTheSamePairs() throws {
        let text = "name=J%C3%BCrgen&x=1+2"
        let fromBytes = try URLEncodedForm.decode(Array(text.utf8)).map { "\($0.name)=\($0.value)" }
        #expect(fromBytes == (try Self.pairs(text)))
    }

    /// The in-place lookup of plain query strings answers exactly what the full decoder's first match does.
    @Test(arguments: [
        "task_id=abc", "a=1&task_id=2&task_id=3", "task_id", "task_id=", "&&task_id=x&&", "", "other=1",
        "task_idx=1&task_id=2", "xtask_id=1", "task_id==a", "=1&task_id=z", "a=b=c&task_id=d",
        "padding_padding_padding=1&task_id=a_value_longer_than_eight_bytes&x=y",
    ])
    func plainLookupAgreesWithTheDecoder(query: String) throws {
        let decoded = try URLEncodedForm.decode(query).first { $0.name == "task_id" }?.value
        let plain = try #require(URLEncodedForm.firstValueIfPlain(named: "task_id", in: query))
        #expect(plain == decoded)
    }

    @Test(arguments: [
        "task_id=a%20b", "task_id=a+b", "task_id=J\u{FC}rgen", "x=%zz&task_id=1", "task_id=abcdefghijklmnop%20",
        "abcdefgh+&task_id=1", "abcdefghijklmnopqrstuvwxyz&task_id=\u{E9}x", "task_id=1&abcdefghijklmno%",
    ])
    func queriesThatNeedDecodingAreLeftToTheDecoder(query: String) {
        #expect(URLEncodedForm.firstValueIfPlain(named: "task_id", in: query) == nil)
        #expect(URLEncodedForm.firstValueIfPlain(named: "", in: "=1") == nil)
    }
}
