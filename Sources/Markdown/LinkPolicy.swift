/// Which link destinations an answer may use, and how they are written into an attribute.
enum LinkPolicy {
    /// The schemes a link may have. Anything else (`javascript:`, `data:`, `vbscript:`, `file:`, …) is refused.
    static let allowedSchemes: Set<String> = ["http", "https", "mailto"]

    /// The destination as it will be written, or `nil` if the link must go.
    ///
    /// cmark has already decoded entities and backslash escapes (`&#106;avascript:` is `javascript:` here). Browsers
    /// drop tabs and line breaks anywhere in a URL and ignore leading and trailing control characters and spaces,
    /// so the scheme is looked for after doing the same. A destination whose text before its first `:` (ahead of
    /// any `/`, `?` or `#`) is not a valid scheme name is refused too, rather than guessed at.
    /// - Parameter destination: the link's destination from the tree.
    /// - Returns: the cleaned destination, or `nil`.
    static func allowedDestination(_ destination: String) -> String? {
        var scalars = String.UnicodeScalarView()
        for scalar in destination.unicodeScalars where scalar != "\t" && scalar != "\n" && scalar != "\r" {
            scalars.append(scalar)
        }
        let isBlank: (Unicode.Scalar) -> Bool = { $0.value <= 0x20 }
        while let first = scalars.first, isBlank(first) { scalars.removeFirst() }
        while let last = scalars.last, isBlank(last) { scalars.removeLast() }
        let url = String(scalars)
        guard !url.isEmpty else { return nil }
        guard let end = url.unicodeScalars.firstIndex(where: { ":/?#".unicodeScalars.contains($0) }),
            url.unicodeScalars[end] == ":"
        else {
            return url  // relative: a path, a query or a fragment
        }
        let scheme = url.unicodeScalars[..<end]
        guard let first = scheme.first, isASCIILetter(first),
            scheme.allSatisfy({ isASCIILetter($0) || ("0"..."9").contains($0) || "+-.".unicodeScalars.contains($0) })
        else { return nil }
        return allowedSchemes.contains(String(String.UnicodeScalarView(scheme)).lowercased()) ? url : nil
    }

    private static func isASCIILetter(_ scalar: Unicode.Scalar) -> Bool {
        ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar)
    }

    /// Writes a URL for an `href` attribute the way cmark does (houdini's `escape_href`): bytes outside a safe set
    /// are percent-encoded (so `"`, `<`, `>`, spaces and backslashes never reach the attribute as they are), `&`
    /// becomes `&amp;` and `'` becomes `&#x27;`.
    /// - Parameter url: the allowed destination.
    /// - Returns: the attribute value, without quotes.
    static func escapeHref(_ url: String) -> String {
        var out = ""
        out.reserveCapacity(url.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in url.utf8 {
            switch byte {
            case UInt8(ascii: "&"): out += "&amp;"
            case UInt8(ascii: "'"): out += "&#x27;"
            case _ where isHrefSafe(byte): out.unicodeScalars.append(Unicode.Scalar(byte))
            default:
                out += "%"
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte >> 4)]))
                out.unicodeScalars.append(Unicode.Scalar(hex[Int(byte & 0xF)]))
            }
        }
        return out
    }

    private static func isHrefSafe(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        default:
            "-_.+!*(),%#@?=;:/$~".utf8.contains(byte)
        }
    }
}
