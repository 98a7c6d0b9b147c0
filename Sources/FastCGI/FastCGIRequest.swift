import Glibc

/// One request as nginx passed it over FastCGI: the CGI parameters and the body.
public struct FastCGIRequest: Sendable {
    /// The parameters as libfcgi handed them over, in one byte buffer; read lazily by name.
    package var parameters: FastCGIParameters {
        didSet { method = Self.method(of: parameters) }
    }
    /// The request body, read up to the server's size limit.
    public var body: [UInt8]
    /// Whether the body was larger than the server's limit (then ``body`` is empty).
    public var bodyTooLarge: Bool

    /// - Parameters:
    ///   - params: the FastCGI parameters.
    ///   - body: the request body.
    ///   - bodyTooLarge: whether the body exceeded the limit.
    public init(params: [String: String], body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.init(parameters: FastCGIParameters(params), body: body, bodyTooLarge: bodyTooLarge)
    }

    /// - Parameters:
    ///   - parameters: the FastCGI parameters.
    ///   - body: the request body.
    ///   - bodyTooLarge: whether the body exceeded the limit.
    package init(parameters: FastCGIParameters, body: [UInt8] = [], bodyTooLarge: Bool = false) {
        self.parameters = parameters
        self.body = body
        self.bodyTooLarge = bodyTooLarge
        self.method = Self.method(of: parameters)
    }

    /// Every FastCGI parameter (CGI/1.1 meta-variables and `HTTP_*` headers), as a dictionary. Builds it on each
    /// call: the accessors below (``method``, ``path``, ``header(_:)``…) read single parameters without it.
    public var params: [String: String] {
        get { parameters.dictionary }
        set { parameters = FastCGIParameters(newValue) }
    }

    /// Maps CGI environment entries (`NAME=VALUE`, as libfcgi hands them over) to parameters.
    ///
    /// The name ends at the first `=`; an entry without one is skipped; a later entry wins over an earlier one with
    /// the same name; bytes that are not UTF-8 become U+FFFD. Pure, so that the fuzz targets can call it.
    /// - Parameter entries: the entries' bytes, without their terminating NUL.
    /// - Returns: the parameters.
    package static func params(fromEnvironment entries: some Sequence<UnsafeBufferPointer<UInt8>>) -> [String: String] {
        FastCGIParameters(environment: entries).dictionary
    }

    /// The HTTP method (`REQUEST_METHOD`), `GET` when absent. Read once: every request asks several times.
    public private(set) var method: String

    private static func method(of parameters: FastCGIParameters) -> String {
        parameters[.requestMethod] ?? "GET"
    }

    /// A parameter's value as bytes (not UTF-8 checked), without making a `String`; `nil` when it is absent.
    /// - Parameter name: the parameter's name.
    package func parameterBytes(_ name: StaticString) -> ArraySlice<UInt8>? {
        name.withUTF8Buffer { parameters.valueBytes(named: $0) }
    }

    /// A well-known parameter's value as bytes (not UTF-8 checked), found without a search.
    /// - Parameter name: the parameter.
    package func parameterBytes(_ name: FastCGIParameters.WellKnown) -> ArraySlice<UInt8>? {
        parameters.valueBytes(name)
    }

    /// The decoded, normalised path nginx matched (`DOCUMENT_URI`), else the path part of `REQUEST_URI`.
    public var path: String {
        if let uri = parameters[.documentURI], !uri.isEmpty { return uri }
        let requestURI = parameters[.requestURI] ?? "/"
        return String(requestURI.prefix { $0 != "?" })
    }

    /// The raw, still percent-encoded query string.
    public var queryString: String { parameters[.queryString] ?? "" }

    /// The client's address as nginx saw it (`REMOTE_ADDR`).
    public var remoteAddress: String? { parameters["REMOTE_ADDR"] }

    /// The request's `Content-Type`, if any.
    public var contentType: String? {
        guard let value = parameters[.contentType], !value.isEmpty else { return nil }
        return value
    }

    /// A request header by its HTTP name, case-insensitively (`header("HX-Request")` reads `HTTP_HX_REQUEST`).
    /// - Parameter name: the header name.
    /// - Returns: its value, or `nil`.
    public func header(_ name: String) -> String? {
        parameters.header(name)
    }
}

/// FastCGI parameters kept as libfcgi hands them over: every entry's bytes in one buffer, and where each name and
/// value lie in it. Looking a name up compares bytes (a handful of entries per request: cheaper than hashing every
/// name into a dictionary); a value becomes a `String` only when it is read.
///
/// Same meaning as the dictionary it replaces: an entry without `=` is skipped, a later entry wins over an earlier
/// one with the same name (names equal as Strings), bytes that are not UTF-8 become U+FFFD when read.
package struct FastCGIParameters: Sendable {
    /// The entries' bytes, back to back, each `NAME=VALUE` without terminator.
    private var bytes: [UInt8] = []
    /// Per entry three offsets into ``bytes``: where the name starts, where the `=` is, where the value ends.
    private var bounds: [UInt32] = []
    /// Whether a name may have a byte that is not ASCII (copied from C: whether any byte is not). Such a name can
    /// equal an ASCII one as a `String` (U+212A KELVIN SIGN is canonically "K") or not be UTF-8 at all; the
    /// dictionary compared names as Strings, so look-ups that miss byte-wise do too when this is set.
    private var hasNonASCIIName = false
    /// Where the last entry of each ``WellKnown`` name is (its index in ``bounds`` / 3), or -1: noted while the
    /// entries are stored, so that the parameters every request reads are found without a search.
    private var wellKnownEntries: WellKnownEntries = .init()

    /// The parameters the server and the routes read on every request.
    package enum WellKnown: Int, CaseIterable, Sendable {
        case requestMethod, documentURI, requestURI, queryString, contentLength, contentType

        /// The parameter's name.
        package var name: StaticString {
            switch self {
            case .requestMethod: "REQUEST_METHOD"
            case .documentURI: "DOCUMENT_URI"
            case .requestURI: "REQUEST_URI"
            case .queryString: "QUERY_STRING"
            case .contentLength: "CONTENT_LENGTH"
            case .contentType: "CONTENT_TYPE"
            }
        }

        /// The well-known name these bytes spell, if any.
        @inline(__always)
        static func named(_ name: UnsafeBufferPointer<UInt8>) -> WellKnown? {
            // The six differ in length or first byte: at most one byte-wise comparison.
            let candidate: WellKnown? =
                switch (name.count, name.first) {
                case (14, UInt8(ascii: "R")): .requestMethod
                case (14, UInt8(ascii: "C")): .contentLength
                case (12, UInt8(ascii: "D")): .documentURI
                case (12, UInt8(ascii: "Q")): .queryString
                case (12, UInt8(ascii: "C")): .contentType
                case (11, UInt8(ascii: "R")): .requestURI
                default: nil
                }
            guard let candidate, let start = name.baseAddress else { return nil }
            // Every name is ASCII, so each literal is stored as UTF-8 bytes (`utf8Start` is valid).
            return memcmp(candidate.name.utf8Start, start, name.count) == 0 ? candidate : nil
        }
    }

    /// One entry index per ``WellKnown`` name, inline (no allocation).
    private struct WellKnownEntries: Sendable {
        private var slots: (Int32, Int32, Int32, Int32, Int32, Int32) = (-1, -1, -1, -1, -1, -1)

        subscript(name: WellKnown) -> Int32 {
            get {
                switch name {
                case .requestMethod: slots.0
                case .documentURI: slots.1
                case .requestURI: slots.2
                case .queryString: slots.3
                case .contentLength: slots.4
                case .contentType: slots.5
                }
            }
            set {
                switch name {
                case .requestMethod: slots.0 = newValue
                case .documentURI: slots.1 = newValue
                case .requestURI: slots.2 = newValue
                case .queryString: slots.3 = newValue
                case .contentLength: slots.4 = newValue
                case .contentType: slots.5 = newValue
                }
            }
        }
    }

    /// Notes the entry just stored (the last in ``bounds``) when its name is well known.
    private mutating func noteWellKnown(_ name: UnsafeBufferPointer<UInt8>) {
        if let known = WellKnown.named(name) { wellKnownEntries[known] = Int32(bounds.count / 3 - 1) }
    }

    package init() {}

    /// Reserves room for the entries of one request.
    package mutating func reserveCapacity(bytes byteCount: Int, entries: Int) {
        bytes.reserveCapacity(byteCount)
        bounds.reserveCapacity(entries * 3)
    }

    /// Copies a C environment (`NAME=VALUE` strings up to a null pointer, as libfcgi's `envp`) in two passes: one
    /// to size the buffers, one to fill them.
    /// - Parameter environment: the first entry.
    package init(cEnvironment environment: UnsafePointer<UnsafeMutablePointer<CChar>?>) {
        var entryCount = 0
        var byteCount = 0
        while let entry = environment[entryCount] {
            byteCount += strlen(entry)
            entryCount += 1
        }
        var highBits: UInt8 = 0
        // Written into scratch space, then copied into the arrays: `Array(unsafeUninitializedCapacity:)` and
        // `init(repeating:count:)` look their storage class's metadata up at run time on every call (~650
        // instructions each here), an array made from a buffer does not, and per-entry appends cost more still.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(byteCount, 1)) { storage in
            withUnsafeTemporaryAllocation(of: UInt32.self, capacity: max(entryCount * 3, 1)) { offsets in
                guard let base = storage.baseAddress else { return }
                var filled = 0
                var kept = 0
                for index in 0..<entryCount {
                    guard let entry = environment[index] else { continue }
                    let length = strlen(entry)
                    guard let equals = memchr(entry, Int32(UInt8(ascii: "=")), length) else { continue }
                    let nameLength = UnsafeRawPointer(equals) - UnsafeRawPointer(entry)
                    let source = UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self)
                    (base + filled).initialize(from: source, count: length)
                    if (11...14).contains(nameLength),
                        let known = WellKnown.named(UnsafeBufferPointer(start: source, count: nameLength))
                    {
                        wellKnownEntries[known] = Int32(kept)
                    }
                    offsets[kept * 3] = UInt32(filled)
                    offsets[kept * 3 + 1] = UInt32(filled + nameLength)
                    offsets[kept * 3 + 2] = UInt32(filled + length)
                    filled += length
                    kept += 1
                }
                // One pass over every byte, names and values: cheaper than a loop per name (most are short), and
                // a value that is not ASCII only sends look-ups that miss to the String comparison.
                for byte in UnsafeBufferPointer(rebasing: storage[..<filled]) { highBits |= byte }
                bytes = [UInt8](UnsafeBufferPointer(rebasing: storage[..<filled]))
                bounds = [UInt32](UnsafeBufferPointer(rebasing: offsets[..<(kept * 3)]))
            }
        }
        hasNonASCIIName = highBits >= 0x80
    }

    /// - Parameter entries: `NAME=VALUE` entries, without their terminating NUL.
    package init(environment entries: some Sequence<UnsafeBufferPointer<UInt8>>) {
        reserveCapacity(bytes: 1024, entries: 32)
        for entry in entries { append(entry) }
    }

    /// - Parameter dictionary: parameters by name.
    package init(_ dictionary: [String: String]) {
        for (name, value) in dictionary {
            if !hasNonASCIIName { hasNonASCIIName = name.utf8.contains { $0 >= 0x80 } }
            let start = bytes.count
            bytes.append(contentsOf: name.utf8)
            let equals = bytes.count
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.utf8)
            bounds.append(UInt32(start))
            bounds.append(UInt32(equals))
            bounds.append(UInt32(bytes.count))
            bytes.withUnsafeBufferPointer { noteWellKnown(UnsafeBufferPointer(rebasing: $0[start..<equals])) }
        }
    }

    /// Appends one `NAME=VALUE` entry; one without `=` is skipped.
    /// - Parameter entry: the entry's bytes.
    package mutating func append(_ entry: UnsafeBufferPointer<UInt8>) {
        guard let base = entry.baseAddress else { return }
        var equals = 0
        var highBits: UInt8 = 0
        while equals < entry.count && base[equals] != UInt8(ascii: "=") {
            highBits |= base[equals]
            equals += 1
        }
        guard equals < entry.count else { return }
        if highBits >= 0x80 { hasNonASCIIName = true }
        let start = bytes.count
        bytes.append(contentsOf: entry)
        bounds.append(UInt32(start))
        bounds.append(UInt32(start + equals))
        bounds.append(UInt32(bytes.count))
        noteWellKnown(UnsafeBufferPointer(start: base, count: equals))
    }

    /// The value of the last entry named `name`, decoded as UTF-8 (U+FFFD for bytes that are not).
    package subscript(name: StaticString) -> String? {
        name.withUTF8Buffer { value(named: $0) }
    }

    /// The value of a well-known parameter, decoded as UTF-8 (U+FFFD for bytes that are not).
    package subscript(name: WellKnown) -> String? {
        valueRange(name).map { range in
            bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
        }
    }

    /// The value of a well-known parameter as bytes; `nil` when there is none.
    package func valueBytes(_ name: WellKnown) -> ArraySlice<UInt8>? {
        valueRange(name).map { bytes[$0] }
    }

    /// Where a well-known parameter's value lies in ``bytes``: from the entry noted when it was stored.
    ///
    /// No name that is not ASCII can equal one of these as a `String`: the only scalars canonically equivalent to
    /// ASCII are U+212A ("K"), U+037E (";") and U+1FEF ("`"), and no well-known name has those letters. So the entry
    /// noted byte-wise is the one the search by name would find.
    private func valueRange(_ name: WellKnown) -> Range<Int>? {
        let entry = Int(wellKnownEntries[name])
        guard entry >= 0 else { return nil }
        return (Int(bounds[entry * 3 + 1]) + 1)..<Int(bounds[entry * 3 + 2])
    }

    /// A request header by its HTTP name, case-insensitively: `HX-Request` reads `HTTP_HX_REQUEST`.
    package func header(_ name: String) -> String? {
        // "HTTP_" and the name upper-cased, "-" as "_", a non-ASCII scalar as "?" (no parameter name has one).
        var key: [UInt8] = []
        key.reserveCapacity(5 + name.utf8.count)
        key.append(contentsOf: "HTTP_".utf8)
        for scalar in name.unicodeScalars {
            let byte = scalar.isASCII ? UInt8(scalar.value) : UInt8(ascii: "?")
            key.append(
                byte == UInt8(ascii: "-") ? UInt8(ascii: "_") : (0x61...0x7A).contains(byte) ? byte - 0x20 : byte)
        }
        return key.withUnsafeBufferPointer { value(named: $0) }
    }

    private func value(named name: UnsafeBufferPointer<UInt8>) -> String? {
        valueRange(named: name).map { range in
            bytes.withUnsafeBufferPointer { String(decoding: UnsafeBufferPointer(rebasing: $0[range]), as: UTF8.self) }
        }
    }

    /// The value of the last entry named `name`, as bytes; `nil` when there is none.
    package func valueBytes(named name: UnsafeBufferPointer<UInt8>) -> ArraySlice<UInt8>? {
        valueRange(named: name).map { bytes[$0] }
    }

    /// Where the value of the last entry named `name` lies in ``bytes``.
    private func valueRange(named name: UnsafeBufferPointer<UInt8>) -> Range<Int>? {
        bytes.withUnsafeBufferPointer { storage -> Range<Int>? in
            var entry = bounds.count
            search: while entry >= 3 {
                entry -= 3
                let start = Int(bounds[entry])
                let equals = Int(bounds[entry + 1])
                if equals - start != name.count || !Self.sameBytes(storage, from: start, name) {
                    let entryName = UnsafeBufferPointer(rebasing: storage[start..<equals])
                    guard hasNonASCIIName, entryName.contains(where: { $0 >= 0x80 }),
                        String(decoding: entryName, as: UTF8.self) == String(decoding: name, as: UTF8.self)
                    else { continue search }
                }
                return (equals + 1)..<Int(bounds[entry + 2])
            }
            return nil
        }
    }

    /// Whether `storage` holds `name`'s bytes from `start` on (the caller checked that they fit).
    @inline(__always)
    private static func sameBytes(
        _ storage: UnsafeBufferPointer<UInt8>, from start: Int, _ name: UnsafeBufferPointer<UInt8>
    ) -> Bool {
        guard let stored = storage.baseAddress, let wanted = name.baseAddress else { return name.isEmpty }
        return memcmp(stored + start, wanted, name.count) == 0
    }

    /// Every parameter by name.
    package var dictionary: [String: String] {
        var params = [String: String](minimumCapacity: bounds.count / 3)
        bytes.withUnsafeBufferPointer { storage in
            for entry in stride(from: 0, to: bounds.count, by: 3) {
                let start = Int(bounds[entry])
                let equals = Int(bounds[entry + 1])
                let end = Int(bounds[entry + 2])
                let name = String(decoding: UnsafeBufferPointer(rebasing: storage[start..<equals]), as: UTF8.self)
                params[name] = String(
                    decoding: UnsafeBufferPointer(rebasing: storage[(equals + 1)..<end]), as: UTF8.self)
            }
        }
        return params
    }
}
