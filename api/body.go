package api

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"

	"github.com/clustergraph/clustergraph/errkind"
)

// checkBody answers a POST whose body gqlgen cannot read, before gqlgen
// sees it, with the client's error (BAD_USER_INPUT) and a message that says
// what was wrong without quoting the body; gqlgen would answer it as an
// internal error that quotes the whole body, and the presenter would log it.
// The log line names the failure, the client's address and the body's size:
// never the body, whose variables may hold passwords and whose apply
// manifests may hold Secrets.
func checkBody(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || isUpgrade(r) {
			q := r.URL.Query()
			next.ServeHTTP(w, r.WithContext(withDocumentID(r.Context(), cmp.Or(q.Get("documentId"), q.Get("doc_id")))))
			return
		}
		refuse := func(status int, size int, msg string) { refuseBody(log, w, r, status, int64(size), msg) }
		mediaType, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || mediaType != "application/json" {
			refuse(http.StatusUnsupportedMediaType, 0, fmt.Sprintf("Content-Type must be application/json (got %q)", contentTypeName(r.Header.Get("Content-Type"))))
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var tooLarge *http.MaxBytesError
			if errors.As(err, &tooLarge) {
				refuse(http.StatusRequestEntityTooLarge, len(body), fmt.Sprintf("request body is over the limit of %d bytes", tooLarge.Limit))
				return
			}
			refuse(http.StatusBadRequest, len(body), "could not read the request body: "+err.Error())
			return
		}
		req, msg := readRequest(body)
		if msg != "" {
			refuse(http.StatusBadRequest, len(body), msg)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		ctx := withDocumentID(context.WithValue(r.Context(), rawVariablesKey{}, req.Variables), cmp.Or(req.DocumentID, req.DocID))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refuseBody answers a body the server will not read as the client's
// error, and logs the failure, the client and the size: never the body.
func refuseBody(log *slog.Logger, w http.ResponseWriter, r *http.Request, status int, size int64, msg string) {
	log.WarnContext(r.Context(), "refused request body", "reason", msg, "client", r.RemoteAddr, "bytes", size)
	writeError(w, status, errkind.CodeBadUserInput, msg)
}

// contentTypeName is a content type as the message may show it: its
// media type only, and short.
func contentTypeName(ct string) string {
	ct, _, _ = strings.Cut(ct, ";")
	ct = strings.TrimSpace(ct)
	if len(ct) > 64 {
		ct = ct[:64] + "…"
	}
	return ct
}

// graphQLRequest is what a GraphQL POST body holds, as gqlgen reads it.
type graphQLRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
	Extensions    map[string]any `json:"extensions"`
	// DocumentID (the GraphQL over HTTP persisted documents' field) or
	// DocID (Relay's convention) names a persisted document.
	DocumentID string `json:"documentId"`
	DocID      string `json:"doc_id"`
}

// rawVariablesKey holds a POST's variables as sent, for the error
// presenter: gqlgen keeps them only once they validate.
type rawVariablesKey struct{}

// readRequest decodes a GraphQL request body, or says what is wrong with
// it. It decodes the body as gqlgen does (numbers kept as
// written) and describes a failure by position and field, never by the
// bytes found there.
func readRequest(body []byte) (graphQLRequest, string) {
	var req graphQLRequest
	return req, bodyProblem(body, &req)
}

func bodyProblem(body []byte, req *graphQLRequest) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return "request body is empty: send a JSON object with a query"
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := dec.Decode(req)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case err == nil:
		if dec.More() {
			return "request body holds more than one JSON value"
		}
		return ""
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Sprintf("request body is not valid JSON: it ends early (after %d bytes)", len(body))
	case errors.As(err, &syntax):
		return fmt.Sprintf("request body is not valid JSON: syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("request body: %q must be %s", typ.Field, jsonTypeName(typ.Type.Kind().String()))
	case errors.As(err, &typ):
		return "request body must be a JSON object with a query"
	}
	return "request body is not valid JSON"
}

// jsonTypeName names a Go kind as a JSON type.
func jsonTypeName(kind string) string {
	switch kind {
	case "map", "struct":
		return "an object"
	case "string":
		return "a string"
	case "slice", "array":
		return "an array"
	}
	return kind
}
