/// Encodes response body bytes as FastCGI `FCGI_STDOUT` records, the way libfcgi frames them.
///
/// A record is an 8-byte header (version 1, type, request id, content length, padding length, reserved) and its
/// content. The stream writer frames a streamed body itself so that it can write it without blocking; libfcgi still
/// writes the headers before and the end-of-stream and `FCGI_END_REQUEST` records after (`FCGX_Finish_r`).
enum FastCGIRecord {
    /// `FCGI_VERSION_1`.
    static let version: UInt8 = 1
    /// `FCGI_STDOUT`.
    static let stdoutType: UInt8 = 6
    /// The size of a record header.
    static let headerSize = 8
    /// The most content one record carries: its length is 16 bits (65,535); a multiple of 8, as libfcgi writes.
    static let maxContentLength = 65528

    /// Appends `content` as `FCGI_STDOUT` records (none for empty content: an empty record ends the stream).
    /// - Parameters:
    ///   - content: the body bytes.
    ///   - requestID: the request's FastCGI id.
    ///   - buffer: where the records go.
    static func appendStdout(_ content: UnsafeRawBufferPointer, requestID: UInt16, to buffer: inout [UInt8]) {
        guard !content.isEmpty else { return }
        let records = (content.count + maxContentLength - 1) / maxContentLength
        buffer.reserveCapacity(buffer.count + content.count + records * headerSize)
        var start = 0
        while start < content.count {
            let length = min(maxContentLength, content.count - start)
            buffer.append(version)
            buffer.append(stdoutType)
            buffer.append(UInt8(truncatingIfNeeded: requestID >> 8))
            buffer.append(UInt8(truncatingIfNeeded: requestID))
            buffer.append(UInt8(truncatingIfNeeded: length >> 8))
            buffer.append(UInt8(truncatingIfNeeded: length))
            buffer.append(0)  // no padding
            buffer.append(0)  // reserved
            buffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: content[start..<start + length]))
            start += length
        }
    }
}
