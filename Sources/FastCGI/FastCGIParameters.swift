import Glibc
import Synchronization

/// FastCGI parameters as libfcgi hands them over: `NAME=VALUE` C strings, read in place by name.
///
/// The server does not copy them: it takes the ones libfcgi read for the request (``init(takingLibfcgiEnvironment:
/// block:)``), and they are freed with the last copy of this value instead of at the next accept. Looking a name
/// up compares bytes, from the last entry back (the handful of look-ups a request makes cost less than building
/// anything); the parameters every request reads (``WellKnown``) are noted once, so they are found without a
/// search; a value becomes a `String` only when it is read.
///
/// Same meaning as the dictionary it replaced: an entry without `=` is skipped, a later entry wins over an earlier
/// one with the same name (names equal as Strings), bytes that are not UTF-8 become U+FFFD when read. A value ends
/// at its first NUL byte, as libfcgi's C strings do.
package struct FastCGIParameters: Sendable {
    private let environment: CEnvironment
    /// Where the last entry of each ``WellKnown`` name is, or -1.
    private let wellKnownEntries: WellKnownEntries

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

        /// The name and the `=` after it: how an entry of this parameter starts.
        private var entryPrefix: StaticString {
            switch self {
            case .requestMethod: "REQUEST_METHOD="
            case .documentURI: "DOCUMENT_URI="
            case .requestURI: "REQUEST_URI="
            case .queryString: "QUERY_STRING="
            case .contentLength: "CONTENT_LENGTH="
            case .contentType: "CONTENT_TYPE="
            }
        }

        /// Where the value of an entry of this parameter starts.
        @inline(__always)
        func value(in entry: UnsafePointer<CChar>) -> UnsafePointer<CChar> {
            entry + entryPrefix.utf8CodeUnitCount
        }

        /// The well-known parameter an entry is of, if any: its first byte picks at most two candidates, each
        /// compared byte by byte up to its `=` (an entry that differs, or ends, stops the comparison there).
        @inline(__always)
        static func of(_ entry: UnsafePointer<CChar>) -> WellKnown? {
            @inline(__always) func starts(_ candidate: WellKnown) -> Bool {
                let prefix = candidate.entryPrefix
                // Every prefix is ASCII, so the literal is stored as UTF-8 bytes (`utf8Start` is valid). The
                // entry's NUL differs from every prefix byte, so no byte past it is read.
                let wanted = prefix.utf8Start
                var index = 0
                while index < prefix.utf8CodeUnitCount {
                    if UInt8(bitPattern: entry[index]) != wanted[index] { return false }
                    index += 1
                }
                return true
            }
            switch UInt8(bitPattern: entry[0]) {
            case UInt8(ascii: "R"):
                return starts(.requestMethod) ? .requestMethod : starts(.requestURI) ? .requestURI : nil
            case UInt8(ascii: "D"): return starts(.documentURI) ? .documentURI : nil
            case UInt8(ascii: "Q"): return starts(.queryString) ? .queryString : nil
            case UInt8(ascii: "C"):
                return starts(.contentLength) ? .contentLength : starts(.contentType) ? .contentType : nil
            default: return nil
            }
        }
    }

    /// One entry index per ``WellKnown`` name, inline (no allocation).
    struct WellKnownEntries: Sendable {
        private var slots: (Int32, Int32, Int32, Int32, Int32, Int32) = (-1, -1, -1, -1, -1, -1)

        init() {}

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

    private init(_ environment: CEnvironment) {
        self.environment = environment
        // The one scan of an environment for the well-known names: the accept loop's, on a copy.
        wellKnownEntries = ParameterScan(environment.entries).wellKnown
    }

    /// Takes a libfcgi environment already scanned where it lay (``ParameterScan``), without scanning it again.
    init(
        takingLibfcgiEnvironment entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
        block: UnsafeMutableRawPointer?, scan: ParameterScan
    ) {
        environment = CEnvironment(taking: entries, count: scan.count, block: block)
        wellKnownEntries = scan.wellKnown
    }

    /// No parameters.
    package init() {
        self.init(CEnvironment(copying: []))
    }

    /// Takes the parameters libfcgi read for a request, without a copy.
    ///
    /// libfcgi `malloc`s every entry, the vector of their pointers (`envp`) and a `Params` block that holds the
    /// vector (fcgiapp.c: `NewParams`, `ReadParams`, `StringCopy`), and frees them in `FCGX_Finish_r` or the next
    /// `FCGX_Accept_r` (`FreeParams`) unless the request no longer points at them. The caller clears the request's
    /// `envp` and `paramsPtr` and hands both here; this value frees all three with its last copy.
    /// - Parameters:
    ///   - entries: the request's `envp`, ending in a null pointer.
    ///   - block: the request's `paramsPtr`.
    package init(
        takingLibfcgiEnvironment entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>,
        block: UnsafeMutableRawPointer?
    ) {
        self.init(takingLibfcgiEnvironment: entries, block: block, scan: ParameterScan(entries))
    }

    /// Copies a C environment (`NAME=VALUE` strings up to a null pointer) that stays its owner's.
    /// - Parameter environment: the first entry.
    package init(cEnvironment environment: UnsafePointer<UnsafeMutablePointer<CChar>?>) {
        var entries: [UnsafeBufferPointer<UInt8>] = []
        var index = 0
        while let entry = environment[index] {
            entries.append(
                UnsafeBufferPointer(
                    start: UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self), count: strlen(entry)))
            index += 1
        }
        self.init(CEnvironment(copying: entries))
    }

    /// - Parameter entries: `NAME=VALUE` entries, without their terminating NUL.
    package init(environment entries: some Sequence<UnsafeBufferPointer<UInt8>>) {
        self.init(CEnvironment(copying: Array(entries)))
    }

    /// - Parameter dictionary: parameters by name.
    package init(_ dictionary: [String: String]) {
        var bytes: [UInt8] = []
        var ranges: [Range<Int>] = []
        for (name, value) in dictionary {
            let start = bytes.count
            bytes.append(contentsOf: name.utf8)
            bytes.append(UInt8(ascii: "="))
            bytes.append(contentsOf: value.utf8)
            ranges.append(start..<bytes.count)
        }
        let environment = bytes.withUnsafeBufferPointer { all in
            CEnvironment(copying: ranges.map { UnsafeBufferPointer(rebasing: all[$0]) })
        }
        self.init(environment)
    }

    /// The value of the last entry named `name`, decoded as UTF-8 (U+FFFD for bytes that are not).
    package subscript(name: StaticString) -> String? {
        name.withUTF8Buffer { value(named: $0) }
    }

    /// The value of a well-known parameter, decoded as UTF-8 (U+FFFD for bytes that are not).
    package subscript(name: WellKnown) -> String? {
        withValueBytes(name) { bytes in bytes.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// Calls `body` with a well-known parameter's value (valid only during the call), or `nil` when it is absent.
    ///
    /// No name that is not ASCII can equal one of these as a `String`: the only scalars canonically equivalent to
    /// ASCII are U+212A ("K"), U+037E (";") and U+1FEF ("`"), and no well-known name has those letters. So the entry
    /// noted byte-wise is the one the search by name would find.
    package func withValueBytes<Result>(_ name: WellKnown, _ body: (UnsafeBufferPointer<UInt8>?) -> Result) -> Result {
        let index = Int(wellKnownEntries[name])
        guard index >= 0, let entry = environment.entries[index] else { return body(nil) }
        return withExtendedLifetime(environment) { body(Self.bytes(from: name.value(in: entry))) }
    }

    /// A copy of a well-known parameter's value; `nil` when it is absent.
    package func valueBytes(_ name: WellKnown) -> [UInt8]? {
        withValueBytes(name) { $0.map(Array.init) }
    }

    /// A copy of the value of the last entry named `name`; `nil` when there is none.
    package func valueBytes(named name: UnsafeBufferPointer<UInt8>) -> [UInt8]? {
        withValue(named: name) { $0.map(Array.init) }
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
        withValue(named: name) { bytes in bytes.map { String(decoding: $0, as: UTF8.self) } }
    }

    /// Calls `body` with the value of the last entry named `name` (valid only during the call), or `nil`.
    private func withValue<Result>(
        named name: UnsafeBufferPointer<UInt8>, _ body: (UnsafeBufferPointer<UInt8>?) -> Result
    ) -> Result {
        // No entry's name holds a NUL or an `=` (the first `=` ends it): such a name is found nowhere.
        guard let wanted = name.baseAddress,
            memchr(wanted, 0, name.count) == nil, memchr(wanted, Int32(UInt8(ascii: "=")), name.count) == nil
        else { return body(nil) }
        return withExtendedLifetime(environment) {
            let entries = environment.entries
            var found = -1
            var index = environment.count
            while index > 0 {
                index -= 1
                guard let entry = entries[index] else { continue }
                // `strncmp` stops at the entry's NUL, so a shorter entry is never read past its end.
                let same = wanted.withMemoryRebound(to: CChar.self, capacity: name.count) {
                    strncmp(entry, $0, name.count) == 0
                }
                if same && entry[name.count] == CChar(UInt8(ascii: "=")) {
                    found = index
                    break
                }
            }
            // The dictionary compared names as Strings: a later name beyond ASCII can equal this one while its
            // bytes differ (U+212A KELVIN SIGN is canonically "K"), and then it wins.
            if environment.hasNonASCIIName {
                let text = String(decoding: name, as: UTF8.self)
                index = environment.count
                while index > found + 1 {
                    index -= 1
                    guard let entry = entries[index], let (entryName, value) = Self.split(entry),
                        entryName.contains(where: { $0 >= 0x80 }), String(decoding: entryName, as: UTF8.self) == text
                    else { continue }
                    return body(value)
                }
            }
            guard found >= 0, let entry = entries[found] else { return body(nil) }
            return body(Self.bytes(from: entry + name.count + 1))
        }
    }

    /// Every parameter by name.
    package var dictionary: [String: String] {
        withExtendedLifetime(environment) {
            var params = [String: String](minimumCapacity: environment.count)
            for index in 0..<environment.count {
                guard let entry = environment.entries[index], let (name, value) = Self.split(entry) else { continue }
                params[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
            }
            return params
        }
    }

    /// An entry's name and value, split at its first `=`; `nil` without one.
    private static func split(_ entry: UnsafePointer<CChar>) -> (
        UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>
    )? {
        guard let equals = strchr(entry, Int32(UInt8(ascii: "="))) else { return nil }
        let start = UnsafeRawPointer(entry).assumingMemoryBound(to: UInt8.self)
        return (UnsafeBufferPointer(start: start, count: UnsafePointer(equals) - entry), bytes(from: equals + 1))
    }

    /// The bytes of a C string, up to its NUL.
    @inline(__always)
    static func bytes(from start: UnsafePointer<CChar>) -> UnsafeBufferPointer<UInt8> {
        UnsafeBufferPointer(start: UnsafeRawPointer(start).assumingMemoryBound(to: UInt8.self), count: strlen(start))
    }
}

/// A C environment this process owns: `count` malloc'd NUL-terminated entries, the malloc'd vector of their
/// pointers (ending in a null pointer), and, when it came from libfcgi, the block libfcgi keeps that vector in.
/// Immutable once made, and freed with its last reference.
private final class CEnvironment: @unchecked Sendable {
    let entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>
    let count: Int
    private let block: UnsafeMutableRawPointer?
    /// Whether some entry's name has a byte beyond ASCII: 0 not looked at yet, 1 no, 2 yes. Looked at on the first
    /// look-up by name (the well-known parameters never need it), then kept.
    private let nonASCIINames = Atomic<UInt8>(0)

    /// - Parameter count: how many entries there are before the null pointer.
    init(
        taking entries: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>, count: Int, block: UnsafeMutableRawPointer?
    ) {
        self.entries = entries
        self.count = count
        self.block = block
    }

    /// Copies entries into memory of its own, `malloc`'d as libfcgi's is, each NUL-terminated (an entry's bytes
    /// after a NUL are dropped with it).
    convenience init(copying source: [UnsafeBufferPointer<UInt8>]) {
        let entries = Self.allocate(UnsafeMutablePointer<CChar>?.self, count: source.count + 1)
        for (index, bytes) in source.enumerated() {
            let copy = Self.allocate(CChar.self, count: bytes.count + 1)
            if let base = bytes.baseAddress { memcpy(copy, base, bytes.count) }
            copy[bytes.count] = 0
            entries[index] = copy
        }
        entries[source.count] = nil
        self.init(taking: entries, count: source.count, block: nil)
    }

    private static func allocate<Element>(_: Element.Type, count: Int) -> UnsafeMutablePointer<Element> {
        guard let memory = malloc(count * MemoryLayout<Element>.stride) else { fatalError("out of memory") }
        return memory.bindMemory(to: Element.self, capacity: count)
    }

    deinit {
        for index in 0..<count { free(entries[index]) }
        free(entries)
        free(block)
    }

    var hasNonASCIIName: Bool {
        switch nonASCIINames.load(ordering: .relaxed) {
        case 1: return false
        case 2: return true
        default:
            var found = false
            search: for index in 0..<count {
                guard var byte = entries[index] else { continue }
                while byte.pointee != 0 && byte.pointee != CChar(UInt8(ascii: "=")) {
                    if UInt8(bitPattern: byte.pointee) >= 0x80 {
                        found = true
                        break search
                    }
                    byte += 1
                }
            }
            nonASCIINames.store(found ? 2 : 1, ordering: .relaxed)
            return found
        }
    }
}
