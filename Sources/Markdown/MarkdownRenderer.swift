private import CCmarkGFM
public import HTML
import Locking

/// Renders a model's Markdown answer as HTML that is safe to put in a page, with cmark-gfm (GitHub-flavoured
/// Markdown: tables, strikethrough, autolinks, task lists).
///
/// The answer is untrusted, so the renderer is strict:
/// - raw HTML (blocks and inline tags) is shown as text, never passed through;
/// - a link keeps its target only when it is `http:`, `https:`, `mailto:` or relative; any other (`javascript:`,
///   `data:`, `vbscript:`, `file:`…) is removed and its text kept; every link gets
///   `rel="noopener noreferrer nofollow"`;
/// - an image is never loaded: it becomes a link to its address, labelled with its alternative text;
/// - headings move down two levels (`#` becomes `<h3>`), below the page's own `<h1>` and `<h2>`;
/// - a fenced code block keeps its language as a class (`<code class="language-python">`).
///
/// Input larger than ``Configuration/maxBytes``, or with more brackets than ``Configuration/maxBrackets``, is shown
/// as escaped plain text instead: Debian's cmark-gfm (0.29.0.gfm.6) has known super-linear cases on such input.
///
/// The renderer is a `Sendable` value: one instance may be used from any number of threads at once.
public struct MarkdownRenderer: Sendable {
    /// Limits of the renderer.
    public struct Configuration: Sendable {
        /// The largest input rendered as Markdown, in UTF-8 bytes (default 4 MiB); larger input is shown as text.
        public var maxBytes: Int = 4 << 20
        /// The most `[` characters an input may hold to be rendered as Markdown (default 10,000): cmark-gfm
        /// 0.29.0.gfm.6 takes polynomial time on long runs of unmatched brackets (`![[]()` repeated).
        public var maxBrackets: Int = 10_000
        /// How many levels headings move down (default 2: `#` becomes `<h3>`); the result is at most 6.
        public var headingOffset: Int = 2

        /// The defaults.
        public init() {}
    }

    /// The renderer's limits.
    public let configuration: Configuration

    /// The `rel` every link of an answer carries: no access to this page, no referrer, no endorsement.
    public static let linkRel = "noopener noreferrer nofollow"

    /// - Parameter configuration: the renderer's limits.
    public init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Renders Markdown as safe HTML.
    /// - Parameter markdown: the untrusted Markdown text.
    /// - Returns: the HTML fragment (block elements: paragraphs, lists, tables, `<pre>`…).
    public func render(_ markdown: String) -> HTML {
        guard isRenderable(markdown) else { return Self.plainText(markdown) }
        guard let html = CmarkDocument.renderHTML(markdown, headingOffset: configuration.headingOffset) else {
            return Self.plainText(markdown)
        }
        return HTML(unsafeRaw: html)
    }

    /// Whether the input is within the limits cmark-gfm is known to handle in linear time.
    func isRenderable(_ markdown: String) -> Bool {
        let bytes = markdown.utf8
        guard bytes.count <= configuration.maxBytes else { return false }
        var brackets = 0
        for byte in bytes where byte == UInt8(ascii: "[") {
            brackets += 1
            if brackets > configuration.maxBrackets { return false }
        }
        return true
    }

    /// The fallback: the text escaped, its line breaks kept by the `plain-text` class.
    static func plainText(_ text: String) -> HTML {
        "<p class=\"plain-text\">\(text)</p>\n"
    }
}
