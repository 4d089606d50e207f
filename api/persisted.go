package api

import (
	"context"
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
// mapping the lower-case hex SHA-256 of each query's exact text to the
// text. A key that is not its query's hash is an error, so a typo cannot
// allow something else than what the file shows.
func LoadPersistedQueries(path string) (map[string]string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var queries map[string]string
	if err := json.Unmarshal(raw, &queries); err != nil {
		return nil, fmt.Errorf("%s: want a JSON object of sha256 → query: %w", path, err)
	}
	for hash, q := range queries {
		if sum := queryHash(q); sum != strings.ToLower(hash) {
			return nil, fmt.Errorf("%s: key %s is not the SHA-256 of its query (that is %s)", path, hash, sum)
		}
	}
	if len(queries) == 0 {
		return nil, fmt.Errorf("%s: no queries: every request would be refused", path)
	}
	return queries, nil
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

func (p persistedOnly) MutateOperationParameters(_ context.Context, raw *graphql.RawParams) *gqlerror.Error {
	var hash string
	if ext, ok := raw.Extensions["persistedQuery"].(map[string]any); ok {
		hash, _ = ext["sha256Hash"].(string)
	}
	if hash == "" {
		if _, ok := p.queries[queryHash(raw.Query)]; ok {
			return nil
		}
		return &gqlerror.Error{Message: "this server accepts only persisted queries, and this one is not on its list", Extensions: map[string]any{"code": errkind.CodeForbidden}}
	}
	q, ok := p.queries[strings.ToLower(hash)]
	if !ok {
		return &gqlerror.Error{Message: "no persisted query has this sha256Hash", Extensions: map[string]any{"code": CodePersistedQueryNotFound}}
	}
	if raw.Query != "" && raw.Query != q {
		return &gqlerror.Error{Message: "the query is not the persisted query of its sha256Hash", Extensions: map[string]any{"code": errkind.CodeBadUserInput}}
	}
	raw.Query = q
	return nil
}
