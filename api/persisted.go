package api

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/clustergraph/clustergraph/errkind"
)

// LoadPersistedQueries reads a persisted-query allowlist: a JSON object
// mapping each document's id to its exact text, as Apollo's persisted
// query lists, graphql-codegen's client preset (persisted-documents.json)
// and relay-compiler (persistConfig) write them. An id is a hash of its
// text: lower-case hex SHA-256 (codegen's and the APQ extension's),
// "sha256:" and that hex (the GraphQL over HTTP persisted documents'
// form), or hex SHA-1 or MD5 (codegen's sha1, Relay's default). An id
// that is not its text's hash is an error, so a typo cannot allow
// something else than what the file shows. The returned map holds each
// document under its id and under its text's SHA-256.
func LoadPersistedQueries(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var docs map[string]string
	if err := json.Unmarshal(raw, &docs); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of document id → query: %w", path, err)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: no queries: every request would be refused", path)
	}
	out := make(map[string]string, 2*len(docs))
	for id, q := range docs {
		want, err := documentHash(id, q)
		if err != nil {
			return nil, fmt.Errorf("%s: key %s: %w", path, id, err)
		}
		if got := strings.ToLower(id); got != want {
			return nil, fmt.Errorf("%s: key %s is not the hash of its query (that is %s)", path, id, want)
		}
		out[want] = q
		out[queryHash(q)] = q
	}
	return out, nil
}

// documentHash is q's hash in the form of id: by its prefix and length,
// one of the hashes LoadPersistedQueries accepts.
func documentHash(id, q string) (string, error) {
	bare, prefixed := strings.CutPrefix(strings.ToLower(id), "sha256:")
	if _, err := hex.DecodeString(bare); err != nil {
		return "", fmt.Errorf("an id must be a hex hash (SHA-256, sha256:SHA-256, SHA-1 or MD5)")
	}
	switch {
	case prefixed && len(bare) == 64:
		return "sha256:" + queryHash(q), nil
	case len(bare) == 64:
		return queryHash(q), nil
	case len(bare) == 40:
		sum := sha1.Sum([]byte(q))
		return hex.EncodeToString(sum[:]), nil
	case len(bare) == 32:
		sum := md5.Sum([]byte(q))
		return hex.EncodeToString(sum[:]), nil
	}
	return "", fmt.Errorf("an id must be a hex hash (SHA-256, sha256:SHA-256, SHA-1 or MD5), not %d digits", len(bare))
}

// CodePersistedQueryNotFound is the code of a hash the allowlist does not
// hold: the one Apollo clients and gqlgen's APQ use for it.
const CodePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"

func queryHash(q string) string {
	sum := sha256.Sum256([]byte(q))
	return hex.EncodeToString(sum[:])
}

// persistedOnly is the gqlgen extension that accepts only allowlisted
// operations: by hash in the APQ extension (persistedQuery.sha256Hash), or
// by exact text. It runs before parsing, on every transport (POST, GET and
// the websocket).
type persistedOnly struct {
	queries map[string]string // sha256 hex → query
}

var (
	_ graphql.HandlerExtension          = persistedOnly{}
	_ graphql.OperationParameterMutator = persistedOnly{}
)

func (persistedOnly) ExtensionName() string                   { return "PersistedQueryAllowlist" }
func (persistedOnly) Validate(graphql.ExecutableSchema) error { return nil }

func (p persistedOnly) MutateOperationParameters(ctx context.Context, raw *graphql.RawParams) *gqlerror.Error {
	var hash string
	if ext, ok := raw.Extensions["persistedQuery"].(map[string]any); ok {
		hash, _ = ext["sha256Hash"].(string)
	}
	docID := documentID(ctx)
	switch {
	case docID != "" && hash != "":
		return &gqlerror.Error{Message: "send a documentId or a persistedQuery extension, not both", Extensions: map[string]any{"code": errkind.CodeBadUserInput}}
	case docID != "":
		hash = docID
	case hash == "":
		if _, ok := p.queries[queryHash(raw.Query)]; ok {
			return nil
		}
		return &gqlerror.Error{Message: "this server accepts only persisted queries, and this one is not on its list", Extensions: map[string]any{"code": errkind.CodeForbidden}}
	}
	// Every document is kept under its text's bare SHA-256 too.
	id := strings.ToLower(hash)
	q, ok := p.queries[id]
	if bare, prefixed := strings.CutPrefix(id, "sha256:"); !ok && prefixed {
		q, ok = p.queries[bare]
	}
	if !ok {
		return &gqlerror.Error{Message: "no persisted query has this id", Extensions: map[string]any{"code": CodePersistedQueryNotFound}}
	}
	if raw.Query != "" && raw.Query != q {
		return &gqlerror.Error{Message: "the query is not the persisted query of its id", Extensions: map[string]any{"code": errkind.CodeBadUserInput}}
	}
	raw.Query = q
	return nil
}

// documentIDKey holds a request's persisted document id (documentId, or
// Relay's doc_id) in its context: gqlgen's transports keep only query,
// operationName, variables and extensions.
type documentIDKey struct{}

// withDocumentID returns ctx carrying id, when there is one.
func withDocumentID(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, documentIDKey{}, id)
}

func documentID(ctx context.Context) string {
	id, _ := ctx.Value(documentIDKey{}).(string)
	return id
}

// noDocuments refuses requests by document id on a server without an
// allowlist, which has no documents to run.
type noDocuments struct{}

var _ graphql.OperationParameterMutator = noDocuments{}

func (noDocuments) ExtensionName() string                   { return "NoPersistedDocuments" }
func (noDocuments) Validate(graphql.ExecutableSchema) error { return nil }

func (noDocuments) MutateOperationParameters(ctx context.Context, _ *graphql.RawParams) *gqlerror.Error {
	if documentID(ctx) == "" {
		return nil
	}
	return &gqlerror.Error{Message: "this server keeps no persisted documents (it runs without --persisted-queries): send the query", Extensions: map[string]any{"code": CodePersistedQueryNotFound}}
}
