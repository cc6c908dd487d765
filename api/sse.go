package api

import (
	"bufio"
	"bytes"
	"io"
)

// Event is one server-sent event.
type Event struct {
	Name string // the "event:" field; "" for the default "message"
	Data []byte // the "data:" lines joined with "\n"
}

// SSEReader reads server-sent events. It ignores comments (keep-alives such
// as ": ping"), "id:" and "retry:" fields, handles CRLF line endings, and
// joins multi-line data. It never returns an event without data.
type SSEReader struct {
	r    *bufio.Reader
	data bytes.Buffer
}

// MaxSSELine bounds one SSE line; a longer line is an error, not an allocation.
const MaxSSELine = 16 << 20

// NewSSEReader returns a reader of the events in r.
func NewSSEReader(r io.Reader) *SSEReader {
	return &SSEReader{r: bufio.NewReaderSize(r, 32<<10)}
}

// Next returns the next event, io.EOF at a clean end, or
// io.ErrUnexpectedEOF when the stream stops in the middle of an event.
func (s *SSEReader) Next() (Event, error) {
	var ev Event
	s.data.Reset()
	hasData := false
	for {
		line, err := s.readLine()
		if err != nil {
			if err == io.EOF && hasData {
				// A final event without its blank line: accept it.
				ev.Data = append([]byte(nil), s.data.Bytes()...)
				return ev, nil
			}
			return Event{}, err
		}
		if len(line) == 0 { // end of an event
			if hasData {
				ev.Data = append([]byte(nil), s.data.Bytes()...)
				return ev, nil
			}
			ev = Event{}
			continue
		}
		if line[0] == ':' {
			continue // comment / keep-alive
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				s.data.WriteByte('\n')
			}
			s.data.Write(value)
			hasData = true
		case "event":
			ev.Name = string(value)
		}
	}
}

func (s *SSEReader) readLine() ([]byte, error) {
	var line []byte
	for {
		chunk, isPrefix, err := s.r.ReadLine()
		if err != nil {
			if err == io.EOF && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
		if !isPrefix && line == nil {
			return chunk, nil
		}
		line = append(line, chunk...)
		if len(line) > MaxSSELine {
			return nil, io.ErrShortBuffer
		}
		if !isPrefix {
			return line, nil
		}
	}
}

// IsDone reports whether an event's data is OpenAI's "[DONE]" terminator.
func IsDone(data []byte) bool { return string(bytes.TrimSpace(data)) == "[DONE]" }

// WriteSSE writes one "data:" event (data must be a single line, as JSON is) and its blank line.
func WriteSSE(w io.Writer, data []byte) error {
	buf := make([]byte, 0, len(data)+8)
	buf = append(buf, "data: "...)
	buf = append(buf, data...)
	buf = append(buf, '\n', '\n')
	_, err := w.Write(buf)
	return err
}

// DoneEvent is the bytes of OpenAI's stream terminator.
var DoneEvent = []byte("data: [DONE]\n\n")
