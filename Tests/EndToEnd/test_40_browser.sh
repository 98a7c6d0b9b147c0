#!/usr/bin/env bash
# shellcheck shell=bash
# The page in a real browser (headless Chromium through nginx over TLS, Tests/Browser/page_check.py): keyboard
# use, the empty-query message, text streaming in over server-sent events with the elapsed time ticking and no
# polling while the stream is open, a second question below the first, model markup shown as text, Cancel, a
# failure and Try again, the dark theme, contrast, a phone-sized screen, the no-JavaScript flow (ask, Try again,
# Cancel, line breaks), a Markdown answer (plain while it streams, then rendered, in both themes; Copy buttons by
# keyboard with the exact text on the clipboard; hostile Markdown; 50 answers on one page; without JavaScript), and
# no console or CSP errors. Sourced by run.sh.
#
# Screenshots of each state go to E2E_SCREENSHOT_DIR, or else to a new folder under TMPDIR that outlives the run
# (the run directory is removed at the end); the folder is printed.

backend_alive || restart_backend "browser: backend running"
t40_shots="${E2E_SCREENSHOT_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/longhaul-screenshots.XXXXXX")}"
mkdir -p "${t40_shots}"
printf 'browser: screenshots in %s\n' "${t40_shots}"
t40_out="$(python3 "${LONGHAUL_ROOT}/Tests/Browser/page_check.py" "https://localhost:${E2E_PORT}" "${E2E_DIR}/cert.pem" \
    "${t40_shots}" 2>&1)" || true
printf '%s\n' "${t40_out}" >>"${E2E_DIR}/responses.log"
t40() { sed -n "s/^$1=//p" <<<"${t40_out}" | head -n 1; }
# The mock's reply to a prompt: "Mock reply to: PROMPT" and, for [mock:long=N], " word1 ... wordN".
t40_reply() {
    printf 'Mock reply to: %s' "$1"
    if (($# > 1)); then
        printf ' word%s' $(seq 1 "$2")
    fi
}
# Passes when a number is at least a minimum. $1: name. $2: minimum. $3: the number. $4 (optional): shown on failure.
t40_at_least() {
    if [[ "$3" =~ ^[0-9]+(\.[0-9]+)?$ ]] && python3 -c 'import sys; sys.exit(float(sys.argv[1]) < float(sys.argv[2]))' "$3" "$2"; then
        pass "$1"
    else
        fail "$1" "expected at least $2, got '$3' ${4:-}"
    fi
}

assert_eq "browser: the page drives without error" "" "$(t40 error)"
assert_eq "browser: the title" "Long running" "$(t40 title)"
assert_eq "browser: the label names the question field" "query" "$(t40 label_names_input)"
assert_eq "browser: the result region is announced politely" "polite" "$(t40 result_aria_live)"
assert_eq "browser: Tab from the top reaches the question field" "True" "$(t40 keyboard_reaches_input)"

assert_eq "browser: an empty query shows 'No query provided'" "No query provided" "$(t40 empty_message)"
assert_eq "browser: a second empty query replaces the message" "True" "$(t40 empty_message_replaced)"
assert_eq "browser: messages do not pile up" "1" "$(t40 empty_messages_shown)"
assert_eq "browser: messages stay out of the task list" "0" "$(t40 empty_messages_in_result)"
assert_eq "browser: the refused text stays in the field" "True" "$(t40 empty_query_kept)"

assert_eq "browser: the form resets once the task is accepted" "True" "$(t40 form_reset)"
assert_eq "browser: an accepted question clears the message" "True" "$(t40 messages_cleared)"
assert_eq "browser: the pending task carries its creation time" "True" "$(t40 created_at_attribute)"
t40_at_least "browser: the text arrives in pieces (several partial texts seen)" 3 "$(t40 stream_pieces_seen)"
t40_at_least "browser: the elapsed time ticks while waiting" 2 "$(t40 elapsed_values_seen)"
assert_eq "browser: the elapsed time reads like '7 s'" "True" "$(t40 elapsed_format)"
assert_eq "browser: the final result" "$(t40_reply 'browser stream [mock:latency=5] [mock:long=40]' 40)" "$(t40 result)"
assert_eq "browser: the finished result is rendered HTML (white-space normal; line breaks are <br>)" "normal" \
    "$(t40 result_white_space)"
assert_eq "browser: one stream for the task" "1" "$(t40 stream_requests)"
assert_eq "browser: no polling while the stream is open (one check, after done)" "1" "$(t40 check_requests)"

assert_eq "browser: a second question gets its result" "$(t40_reply 'browser second question')" "$(t40 second_result)"
assert_eq "browser: the first result stays visible" "True" "$(t40 first_result_still_shown)"
assert_eq "browser: the first result is above the new one" "True" "$(t40 first_above_second)"

assert_eq "browser: model markup (<script>, onerror=) is shown as text" "True" "$(t40 html_as_text)"
assert_eq "browser: and creates no element" "0" "$(t40 injected_elements)"
assert_eq "browser: and runs nothing (no alert dialog)" "0" "$(t40 dialogs)"

assert_eq "browser: Cancel ends the task" "True" "$(t40 cancelled)"
assert_eq "browser: the cancelled task says so" "Cancelled" "$(t40 cancelled_text)"
assert_eq "browser: the keyboard focus stays in the task after Cancel" "True" "$(t40 focus_stays_after_cancel)"

assert_eq "browser: a failing query says Failed" "Failed" "$(t40 failed_heading)"
assert_eq "browser: with a readable reason" "The language model service did not accept this server's API key." \
    "$(t40 failed_summary)"
assert_eq "browser: and its type" "authentication_error" "$(t40 failed_type)"
assert_eq "browser: and a Try again button" "Try again" "$(t40 failed_has_try_again)"
assert_eq "browser: Try again is reached and pressed by keyboard" "True" "$(t40 try_again_by_keyboard)"
assert_eq "browser: Try again puts a new task in place of the failed one" "True" "$(t40 retry_replaces_failed)"
assert_match "browser: the failing query fails once only ([mock:401x1])" '^browser retry [0-9a-f]{6} \[mock:401x1\]$' \
    "$(t40 retry_prompt)"
assert_eq "browser: for the same query" "Question: $(t40 retry_prompt)" "$(t40 retry_query)"
assert_eq "browser: which now succeeds" "$(t40_reply "$(t40 retry_prompt)")" "$(t40 retry_result)"
assert_eq "browser: every task of the page is still shown" "5" "$(t40 tasks_on_page)"

t40_at_least "browser: light theme text contrast is at least 4.5:1" 4.5 "$(t40 light_contrast)" \
    "(worst: $(t40 light_contrast_worst))"
assert_eq "browser: the light theme background" "rgb(251, 251, 252)" "$(t40 light_background)"
assert_eq "browser: prefers-color-scheme dark gives the dark theme" "rgb(21, 23, 27)" "$(t40 dark_background)"
t40_at_least "browser: dark theme text contrast is at least 4.5:1" 4.5 "$(t40 dark_contrast)" \
    "(worst: $(t40 dark_contrast_worst))"
assert_eq "browser: a phone-sized screen shows the result" "True" "$(t40 mobile_result)"
assert_eq "browser: and nothing sticks out sideways" "0" "$(t40 mobile_overflow_px)"

assert_eq "browser, no JavaScript: the form posts to the task page" "True" "$(t40 nojs_task_page)"
assert_eq "browser, no JavaScript: it says Processing... while waiting" "True" "$(t40 nojs_pending)"
t40_at_least "browser, no JavaScript: each refresh shows the time elapsed" 2 "$(t40 nojs_elapsed_values_seen)"
assert_eq "browser, no JavaScript: the refreshing page reaches the result" \
    "$(t40_reply 'browser nojs [mock:latency=6] [mock:long=5]' 5)" "$(t40 nojs_result)"
assert_eq "browser, no JavaScript: and stops refreshing" "True" "$(t40 nojs_refresh_stops)"
assert_eq "browser, no JavaScript: a failure says Failed" "Failed" "$(t40 nojs_failed)"
assert_eq "browser, no JavaScript: Try again makes a new task" "True" "$(t40 nojs_retry_new_task)"
assert_match "browser, no JavaScript: the failing query fails once only" \
    '^browser nojs retry [0-9a-f]{6} \[mock:401x1\]$' "$(t40 nojs_retry_prompt)"
assert_eq "browser, no JavaScript: with the same query, which succeeds" \
    "$(t40_reply "$(t40 nojs_retry_prompt)")" "$(t40 nojs_retry_result)"
assert_eq "browser, no JavaScript: Cancel works" "Cancelled" "$(t40 nojs_cancelled)"
assert_eq "browser: an answer's line breaks are kept" "True" "$(t40 line_breaks_kept)"

assert_eq "browser, Markdown: streams as plain text first" "True" "$(t40 md_streams_as_text)"
assert_eq "browser, Markdown: then every construct is rendered (light)" "" "$(t40 md_missing)"
assert_eq "browser, Markdown: and in the dark theme" "" "$(t40 md_dark_missing)"
t40_at_least "browser, Markdown: light theme contrast (code included) is at least 4.5:1" 4.5 "$(t40 md_contrast)" \
    "(worst: $(t40 md_contrast_worst))"
t40_at_least "browser, Markdown: dark theme contrast (code included) is at least 4.5:1" 4.5 "$(t40 md_dark_contrast)" \
    "(worst: $(t40 md_dark_contrast_worst))"
assert_eq "browser, Markdown: a Copy button on the code block" "1" "$(t40 md_code_copy_buttons)"
assert_eq "browser, Markdown: and one for the whole answer" "1" "$(t40 md_answer_copy_buttons)"
assert_eq "browser, Markdown: a long code line scrolls inside its block" "True" "$(t40 md_code_overflows_its_block)"
assert_eq "browser, Markdown: the block scrolls sideways" "auto" "$(t40 md_code_overflow_x)"
assert_eq "browser, Markdown: the page does not" "0" "$(t40 md_page_overflow_px)"
assert_eq "browser, Markdown: not even on a phone-sized screen" "0" "$(t40 md_mobile_overflow_px)"
assert_eq "browser, Markdown: Copy (code) is reached by keyboard" "True" "$(t40 md_copy_code_by_keyboard)"
assert_eq "browser, Markdown: it confirms with a visible 'Copied'" "Copied" "$(t40 md_copy_code_label)"
assert_eq "browser, Markdown: which is visible" "True" "$(t40 md_copy_code_visible)"
assert_eq "browser, Markdown: the exact code is on the clipboard" "True" "$(t40 md_copy_code_exact)"
assert_eq "browser, Markdown: and screen readers hear it" "Copied to the clipboard" "$(t40 md_copy_status_announced)"
assert_eq "browser, Markdown: Copy answer is reached by keyboard" "True" "$(t40 md_copy_answer_by_keyboard)"
assert_eq "browser, Markdown: it confirms too" "Copied" "$(t40 md_copy_answer_label)"
assert_eq "browser, Markdown: the answer's Markdown is on the clipboard" "True" "$(t40 md_copy_answer_exact)"
assert_eq "browser, Markdown: the label comes back" "True" "$(t40 md_copy_label_returns)"
assert_eq "browser, hostile Markdown: rendered" "True" "$(t40 hostile_rendered)"
assert_eq "browser, hostile Markdown: no script, image, svg or dangerous link" "0" "$(t40 hostile_live_elements)"
assert_eq "browser, hostile Markdown: the image is only a link" "1" "$(t40 hostile_image_is_link)"
assert_eq "browser, hostile Markdown: no request to an outside host" "0" "$(t40 hostile_outside_requests)"
assert_eq "browser, hostile Markdown: no dialog" "0" "$(t40 hostile_dialogs)"
assert_eq "browser, hostile Markdown: no CSP violation" "0" "$(t40 hostile_csp_violations)"
assert_eq "browser, 50 answers: all rendered on one page" "50" "$(t40 fifty_answers)"
assert_eq "browser, 50 answers: each code block has its Copy button" "50" "$(t40 fifty_code_copy_buttons)"
assert_eq "browser, 50 answers: the last Copy still works" "True" "$(t40 fifty_last_copy_works)"
assert_eq "browser, 50 answers: nothing sticks out sideways" "0" "$(t40 fifty_page_overflow_px)"
printf 'browser, 50 answers: rendered in %s s, Copy feedback in %s ms (reported, not asserted)\n' \
    "$(t40 fifty_seconds_to_render)" "$(t40 fifty_copy_feedback_ms)"
assert_eq "browser, no JavaScript: a Markdown answer is rendered" "" "$(t40 nojs_md_missing)"
assert_eq "browser, no JavaScript: and has no Copy buttons" "0" "$(t40 nojs_md_copy_buttons)"

if [[ "$(t40 errors)" == "0" ]]; then
    pass "browser: no console errors"
else
    fail "browser: no console errors" "$(t40 errors) error(s): $(t40 error_text)"
fi
assert_eq "browser: no CSP violations" "0" "$(t40 csp_violations)"
assert_eq "browser: the error watch does see CSP refusals (probe)" "True" "$(t40 csp_probe_detected)"
assert_eq "browser: the CSP blocks an inline script (probe)" "True" "$(t40 csp_probe_blocked_inline_script)"
t40_at_least "browser: screenshots of each state saved" 10 "$(t40 screenshots)"
t40_shot_files="$(find "${t40_shots}" -name '*.png' -size +1k | wc -l)"
assert_eq "browser: every screenshot is a file" "$(t40 screenshots)" "${t40_shot_files}"
true
