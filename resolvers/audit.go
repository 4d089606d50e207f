package resolvers

import (
	"context"
	"fmt"
	"reflect"
	"strings"

	"github.com/99designs/gqlgen/graphql"

	"github.com/clustergraph/clustergraph/audit"
	"github.com/clustergraph/clustergraph/graph/model"
	"github.com/clustergraph/clustergraph/k8s"
)

// sessionTraffic are the Mutation fields that carry a terminal session's
// keystrokes and sizes: the session is audited when it starts and ends
// (terminal.start, terminal.end), not at every key.
var sessionTraffic = map[string]bool{"terminalInput": true, "terminalResize": true}

// auditedArgs are the arguments a record may carry: settings, never
// content. A manifest, a patch's values, terminal data or an alert's text
// are not among them.
var auditedArgs = []string{"replicas", "container", "image", "revision", "days", "clusterRole", "type",
	"propagation", "gracePeriodSeconds", "timeoutSeconds", "dryRun", "force", "namespace"}

// AuditMutations is the one place mutations are audited: a field
// middleware that writes a record for every Mutation field once it has
// resolved, refused ones included, naming the caller, the field (the
// action), its target as the arguments name it, the result, and the
// settings it was given. An apply is recorded per document, with the
// object each one became. A new mutation is audited without a line of its
// own; TestEveryMutationIsAudited holds it so.
func AuditMutations(log *audit.Log) graphql.FieldMiddleware {
	return func(ctx context.Context, next graphql.Resolver) (any, error) {
		fc := graphql.GetFieldContext(ctx)
		if fc == nil || fc.Object != "Mutation" || sessionTraffic[fc.Field.Name] {
			return next(ctx)
		}
		res, err := next(ctx)
		recordMutation(ctx, log, fc.Field.Name, fc.Args, res, err)
		return res, err
	}
}

func recordMutation(ctx context.Context, log *audit.Log, action string, args map[string]any, res any, err error) {
	cluster, object := targetOfArgs(args)
	var attrs []any
	for _, name := range auditedArgs {
		if v, ok := deref(args[name]); ok {
			attrs = append(attrs, name, v)
		}
	}
	switch p := res.(type) {
	case *model.ApplyPayload:
		if err == nil && p != nil {
			for _, r := range p.Results {
				var derr error
				doc := ""
				if r.Error != nil {
					derr = fmt.Errorf("%s: %s", r.Error.Code, r.Error.Message)
				} else if r.Object != nil {
					doc = describe(r.Object)
				}
				log.Record(ctx, action, cluster, doc, derr, append([]any{"document", r.Index}, attrs...)...)
			}
			return
		}
	case *model.PatchPayload:
		if v, ok := args["patch"].(model.JSON); ok {
			attrs = append(attrs, "keys", patchKeys(v.V))
		}
	case *model.DrainPayload:
		if p != nil {
			attrs = append(attrs, "pods", len(p.Pods))
		}
	}
	log.Record(ctx, action, cluster, object, err, attrs...)
}

// targetOfArgs names what a mutation's arguments point at: an object id's
// cluster and object, or a cluster and the user, session or alert named.
func targetOfArgs(args map[string]any) (cluster, object string) {
	if s, ok := args["id"].(string); ok {
		if id, err := k8s.ParseID(s); err == nil {
			return id.Cluster, objectName(id)
		}
		return "", "unparsable id"
	}
	cluster, _ = args["cluster"].(string)
	switch {
	case args["user"] != nil:
		object = fmt.Sprintf("ClusterRoleBinding for %v", args["user"])
	case args["session"] != nil:
		object = fmt.Sprintf("terminal session %v", args["session"])
	case args["input"] != nil:
		if in, ok := args["input"].(model.CreateAlertInput); ok {
			cluster = in.Cluster
			object = strings.TrimPrefix(str(in.Namespace)+"/"+in.AlertName, "/")
		}
	}
	return cluster, object
}

// describe names an applied object as the records of other writes do.
func describe(o model.KubeObject) string {
	if withID, ok := o.(interface{ ID() string }); ok {
		if id, err := k8s.ParseID(withID.ID()); err == nil {
			return objectName(id)
		}
	}
	return ""
}

// deref is an argument's value for the record: what a pointer points at,
// an enum's name; false for an argument not given (absent or null).
func deref(v any) (any, bool) {
	rv := reflect.ValueOf(v)
	for rv.Kind() == reflect.Pointer {
		if rv.IsNil() {
			return nil, false
		}
		rv = rv.Elem()
	}
	if !rv.IsValid() {
		return nil, false
	}
	if s, ok := rv.Interface().(fmt.Stringer); ok {
		return s.String(), true
	}
	return rv.Interface(), true
}
