package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Error is an OpenAI-style error: the body {"error":{"message","type","param","code"}}
// with an HTTP status.
type Error struct {
	Status  int    // HTTP status; 0 means 500
	Message string // what went wrong and what to do
	Type    string // "invalid_request_error", "authentication_error", "rate_limit_error", "api_error", ...
	Param   string // the offending parameter, if any
	Code    string // machine-readable code, if any
	// RetryAfter, in seconds, is sent as the Retry-After header when > 0.
	RetryAfter int
}

func (e *Error) Error() string { return e.Message }

// HTTPError is implemented by errors that know their OpenAI-style form
// (for example a provider's upstream error).
type HTTPError interface {
	error
	APIError() *Error
}

// APIError returns e itself.
func (e *Error) APIError() *Error { return e }

type errorBody struct {
	Error errorFields `json:"error"`
}

type errorFields struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

func strOrNil(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// MarshalJSON writes the OpenAI error body.
func (e *Error) MarshalJSON() ([]byte, error) {
	t := e.Type
	if t == "" {
		t = typeForStatus(e.status())
	}
	return json.Marshal(errorBody{errorFields{Message: e.Message, Type: t, Param: strOrNil(e.Param), Code: strOrNil(e.Code)}})
}

// ParseError decodes an OpenAI-style error body; ok is false when body is not one.
func ParseError(status int, body []byte) (e *Error, ok bool) {
	var b struct {
		Error *struct {
			Message string          `json:"message"`
			Type    string          `json:"type"`
			Param   json.RawMessage `json:"param"`
			Code    json.RawMessage `json:"code"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) != nil || b.Error == nil {
		return nil, false
	}
	e = &Error{Status: status, Message: b.Error.Message, Type: b.Error.Type}
	var s string
	if json.Unmarshal(b.Error.Param, &s) == nil {
		e.Param = s
	}
	if json.Unmarshal(b.Error.Code, &s) == nil {
		e.Code = s
	} else if len(b.Error.Code) > 0 && string(b.Error.Code) != "null" {
		e.Code = string(b.Error.Code)
	}
	return e, true
}

func (e *Error) status() int {
	if e.Status == 0 {
		return http.StatusInternalServerError
	}
	return e.Status
}

func typeForStatus(status int) string {
	switch {
	case status == http.StatusUnauthorized:
		return "authentication_error"
	case status == http.StatusForbidden:
		return "permission_error"
	case status == http.StatusNotFound:
		return "not_found_error"
	case status == http.StatusTooManyRequests:
		return "rate_limit_error"
	case status == http.StatusRequestEntityTooLarge:
		return "invalid_request_error"
	case status >= 400 && status < 500:
		return "invalid_request_error"
	default:
		return "api_error"
	}
}

// BadRequest returns a 400 invalid_request_error about param.
func BadRequest(param, msg string) *Error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Param: param, Message: msg}
}

// Errorf-like constructors for the statuses the gateway uses.

// NewError returns an error with the given status and message.
func NewError(status int, code, msg string) *Error {
	return &Error{Status: status, Code: code, Message: msg}
}

// AsError converts any error to an *Error: itself, an HTTPError's form, or a 500.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var he HTTPError
	if errors.As(err, &he) {
		return he.APIError()
	}
	return &Error{Status: http.StatusInternalServerError, Type: "api_error", Message: "internal error: " + err.Error()}
}

// WriteError writes err as an OpenAI error body with its status. It is the
// one error writer used by every Foundry HTTP handler.
func WriteError(w http.ResponseWriter, err error) {
	e := AsError(err)
	b, _ := e.MarshalJSON()
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if e.RetryAfter > 0 {
		h.Set("Retry-After", itoa(e.RetryAfter))
	}
	w.WriteHeader(e.status())
	_, _ = w.Write(append(b, '\n'))
}

// WriteJSON writes v as a JSON response with status: the success-side
// counterpart of WriteError for every Foundry handler. A value that does not
// encode becomes a 500 error body instead.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, fmt.Errorf("encode response: %w", err))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// StatusOf returns the HTTP status WriteError would use for err.
func StatusOf(err error) int { return AsError(err).status() }

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }
