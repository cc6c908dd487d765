package dataset

import (
	"unicode/utf8"
)

// appendOpenAILine appends ex as an OpenAI fine-tuning line, byte for byte
// what EncodeLine's general path (encoding/json through api's types, then
// unescapeHTML) writes, for the common shape: text or null content, no
// tools, tool calls, content parts or extra fields. It reports false for
// anything else. json.Marshal through the api types' MarshalJSON methods
// costs several µs a row, most of writing a version;
// TestFastEncodeMatchesJSON holds the two together.
func appendOpenAILine(dst []byte, ex *Example) ([]byte, bool) {
	if len(ex.Tools) > 0 || ex.ParallelToolCalls != nil {
		return dst, false
	}
	for i := range ex.Messages {
		m := &ex.Messages[i]
		if m.Content.Parts != nil || len(m.ToolCalls) > 0 || m.Refusal != nil || len(m.Extra) > 0 {
			return dst, false
		}
	}
	dst = append(dst, `{"messages":[`...)
	for i := range ex.Messages {
		m := &ex.Messages[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"role":`...)
		dst = appendJSONString(dst, m.Role)
		dst = append(dst, `,"content":`...)
		if m.Content.IsNull() {
			dst = append(dst, "null"...)
		} else {
			dst = appendJSONString(dst, m.Content.Text)
		}
		if m.Name != "" {
			dst = append(dst, `,"name":`...)
			dst = appendJSONString(dst, m.Name)
		}
		if m.ToolCallID != "" {
			dst = append(dst, `,"tool_call_id":`...)
			dst = appendJSONString(dst, m.ToolCallID)
		}
		dst = append(dst, '}')
	}
	return append(dst, "]}"...), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as encoding/json does with HTML escaping off.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if i += plainRun(s[i:]); i == len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf { // a byte plainRun stopped at: escape it
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
