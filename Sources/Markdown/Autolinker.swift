/// Finds web addresses in plain text, as GitHub's extended autolinks do (`www.example.com`, `https://…`), in one
/// pass: every byte is looked at a bounded number of times, whatever the input.
///
/// An address starts at the beginning of the text, after whitespace or after `*`, `_`, `~` or `(`; it has a
/// domain of letters, digits, `-` and `_` in at least two dot-separated parts (no `_` in the last two); it runs to
/// the next whitespace or `<`, minus trailing punctuation (`?!.,:*_~`), unbalanced closing parentheses and a
/// trailing entity-like `&name;`.
enum Autolinker {
    struct Match: Equatable {
        /// Byte offsets of the address in the text.
        let range: Range<Int>
        /// The link's destination (`http://` is put in front of a `www.` address).
        let url: String
    }

    static func matches(in text: [UInt8]) -> [Match] {
        var found: [Match] = []
        let count = text.count
        var index = 0
        while index < count {
            let byte = text[index] | 0x20  // ASCII lower case
            guard byte == UInt8(ascii: "w") || byte == UInt8(ascii: "h"), isBoundary(text, index) else {
                index += 1
                continue
            }
            let domainStart: Int
            let prefix: String
            if hasPrefix(text, index, "www.") {
                domainStart = index
                prefix = "http://"
            } else if hasPrefix(text, index, "https://") {
                domainStart = index + 8
                prefix = ""
            } else if hasPrefix(text, index, "http://") {
                domainStart = index + 7
                prefix = ""
            } else {
                index += 1
                continue
            }
            var domainEnd = domainStart
            while domainEnd < count, isDomainByte(text[domainEnd]) { domainEnd += 1 }
            // The domain is checked before the rest of the address is scanned, so that a refused start costs only
            // its domain; the scan then resumes after it (a later start inside it would see the same bytes again).
            var checkedEnd = domainEnd
            while checkedEnd > domainStart,
                text[checkedEnd - 1] == UInt8(ascii: ".") || text[checkedEnd - 1] == UInt8(ascii: "_")
            {
                checkedEnd -= 1
            }
            guard isValidDomain(text[domainStart..<checkedEnd]) else {
                index = max(domainEnd, index + 1)
                continue
            }
            var end = domainEnd
            while end < count, !isSpace(text[end]), text[end] != UInt8(ascii: "<") { end += 1 }
            end = max(trimmedEnd(text, start: index, end: end), checkedEnd)
            found.append(Match(range: index..<end, url: prefix + String(decoding: text[index..<end], as: UTF8.self)))
            index = end
        }
        return found
    }

    private static func isBoundary(_ text: [UInt8], _ index: Int) -> Bool {
        guard index > 0 else { return true }
        let before = text[index - 1]
        return isSpace(before) || before == UInt8(ascii: "*") || before == UInt8(ascii: "_")
            || before == UInt8(ascii: "~") || before == UInt8(ascii: "(")
    }

    private static func hasPrefix(_ text: [UInt8], _ index: Int, _ prefix: StaticString) -> Bool {
        let length = prefix.utf8CodeUnitCount
        guard index + length <= text.count else { return false }
        return prefix.withUTF8Buffer { expected in
            for offset in 0..<length where text[index + offset] | 0x20 != expected[offset] | 0x20 {
                // `| 0x20` folds letters; the prefixes' other bytes (`.`, `:`, `/`) already have that bit set.
                return false
            }
            return true
        }
    }

    private static func isSpace(_ byte: UInt8) -> Bool {
        byte == 0x20 || (0x09...0x0D).contains(byte)
    }

    private static func isDomainByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."):
            true
        default: false
        }
    }

    private static func isValidDomain(_ domain: ArraySlice<UInt8>) -> Bool {
        let parts = domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count >= 2, parts.allSatisfy({ !$0.isEmpty }) else { return false }
        return !parts.suffix(2).contains { $0.contains(UInt8(ascii: "_")) }
    }

    /// The end of the address once trailing punctuation, unbalanced `)` and a trailing `&entity;` are left out.
    private static func trimmedEnd(_ text: [UInt8], start: Int, end initialEnd: Int) -> Int {
        var end = initialEnd
        var opening = 0
        var closing = 0
        for byte in text[start..<end] {
            if byte == UInt8(ascii: "(") { opening += 1 } else if byte == UInt8(ascii: ")") { closing += 1 }
        }
        while end > start {
            let last = text[end - 1]
            if "?!.,:*_~".utf8.contains(last) {
                end -= 1
            } else if last == UInt8(ascii: ")"), closing > opening {
                closing -= 1
                end -= 1
            } else if last == UInt8(ascii: ";") {
                var cursor = end - 2
                while cursor > start, isAlphanumeric(text[cursor]) { cursor -= 1 }
                guard cursor > start, cursor < end - 2, text[cursor] == UInt8(ascii: "&") else { break }
                end = cursor
            } else {
                break
            }
        }
        return end
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
