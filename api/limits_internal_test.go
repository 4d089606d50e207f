package api

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/vektah/gqlparser/v2"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"
	"github.com/vektah/gqlparser/v2/validator"

	"github.com/clustergraph/clustergraph/errkind"
	"github.com/clustergraph/clustergraph/graph"
)

// The cost model's unit tests: the estimator on the served schema, in
// process, and the refusal through gqlgen's executor with no resolver at
// all (were one to run, it would panic).

const testPage = 100

// The abuses, for the integration tests (package api_test) too.
var (
	FragmentBomb    = fragmentBomb
	AliasedTopology = aliasedTopology
)

var testLimits = queryLimits{maxDepth: 15, maxComplexity: 250000, defaultPage: testPage}

// fragmentBomb is a query of levels fragments, each spreading the one
// before it twice: about 40 bytes a level, 2^levels copies of the first.
func fragmentBomb(levels int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "query { ...F%d }\nfragment F0 on Query { pods(first: 1) { nodes { name } } }\n", levels)
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i-1, i-1)
	}
	return b.String()
}

// aliasedTopology asks for a cluster's topology n times under aliases.
func aliasedTopology(cluster string, n int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "t%d: topology(cluster: %q) { nodes { objectId } } ", i, cluster)
	}
	b.WriteString("}")
	return b.String()
}

// introspectionQuery is the query GraphiQL sends on load.
const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) {
    name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason
  }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name
    ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`

func servedSchema() *ast.Schema { return graph.NewExecutableSchema(graph.Config{}).Schema() }

// estimate validates query against the served schema and returns its depth
// and cost.
func estimate(t testing.TB, query string, vars map[string]any) (depth, cost int) {
	t.Helper()
	doc, errs := gqlparser.LoadQueryWithRules(servedSchema(), query, nil)
	if len(errs) > 0 {
		t.Fatalf("invalid query: %v", errs)
	}
	e := newEstimator(testPage, vars)
	op := doc.Operations[0]
	return e.depth(op.SelectionSet), e.cost(op.SelectionSet, outsideConnection)
}

func TestCostCountsEveryListByItsBound(t *testing.T) {
	n := servedSchemaSize()
	for _, tc := range []struct {
		name  string
		query string
		vars  map[string]any
		want  int
	}{
		{"connection page", `{ pods(first: 10) { totalCount nodes { name } } }`, nil, 1 + 1 + 10*2},
		{"connection limit", `{ pods(limit: 7) { edges { cursor node { name } } } }`, nil, 1 + 7*(1+1+2)},
		{"connection default page", `{ pods { nodes { name } } }`, nil, 1 + testPage*2},
		{"connection first over the page is cut to it", `{ pods(first: 100000) { nodes { name } } }`, nil, 1 + testPage*2},
		{"page from a variable", `query($n: Int) { pods(first: $n) { nodes { name } } }`, map[string]any{"n": int64(3)}, 1 + 3*2},
		{"page from a JSON number", `query($n: Int) { pods(first: $n) { nodes { name } } }`, map[string]any{"n": json.Number("4")}, 1 + 4*2},
		{"nested pages multiply", `{ workloads(first: 10) { nodes { pods(first: 5) { nodes { name } } } } }`, nil, 1 + 10*(1+1+5*2)},
		{"topology", `{ topology(cluster: "a") { nodes { objectId } edges { from } } }`, nil, 1 + clusterItems*2 + clusterItems*2},
		{"viewer namespaces without limit", `{ viewer { clusters { namespaces { name } } } }`, nil, 1 + fleetItems*(1+clusterItems*2)},
		{"viewer namespaces with limit", `{ viewer { clusters { namespaces(limit: 3) { name } } } }`, nil, 1 + fleetItems*(1+3*2)},
		{"plain list first", `{ namespaces(first: 2) { nodes { alerts(first: 5) { id } } } }`, nil, 1 + 2*(1+5*2)},
		{"plain list default first", `{ namespaces(first: 2) { nodes { alerts { id } metering { samples } } } }`, nil, 1 + 2*(1+20*2+30*2)},
		{"plain list first over the page", `{ namespaces(first: 1) { nodes { alerts(first: 5000) { id } } } }`, nil, 1 + 1*(1+testPage*2)},
		{"an object's own list", `{ pods(first: 1) { nodes { containers { name } } } }`, nil, 1 + 1*(1+ownItems*2)},
		{"usage history, last hour", `{ pods(first: 1) { nodes { usageHistory { cpuMillis } } } }`, nil, 1 + 1*(1+hourSamples*2)},
		{"usage history since", `{ pods(first: 1) { nodes { usageHistory(since: "2020-01-01T00:00:00Z") { cpuMillis } } } }`, nil, 1 + 1*(1+daySamples*2)},
		{"clusters", `{ clusters { name } }`, nil, fleetItems * 2},
		{"resources(): apiserver reads", `{ a: resources(group: "", version: "v1", resource: "configmaps", first: 1) { totalCount } b: resources(group: "", version: "v1", resource: "pods", first: 1) { totalCount } }`, nil, 2 * (clusterItems + 1 + 1)},
		{"aliases count each", `{ a: pods(first: 2) { nodes { name } } b: pods(first: 2) { nodes { name } } }`, nil, 2 * (1 + 2*2)},
		{"introspection of one type", `{ __type(name: "Query") { fields { name args { name } } } }`, nil, 1 + n.fields.longest*(1+1+n.args.longest*2)},
		{"introspection of every type", `{ __schema { types { fields { args { name } } } } }`, nil, 1 + n.types*(1+n.fields.mean*(1+n.args.mean*2))},
		{"a type's fields' types' fields", `{ __type(name: "Query") { fields { type { fields { name } } } } }`, nil, 1 + n.fields.longest*(1+1+n.fields.longest*2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, got := estimate(t, tc.query, tc.vars); got != tc.want {
				t.Errorf("cost = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestCostMemoizesFragmentsExactly(t *testing.T) {
	_, base := estimate(t, `{ pods(first: 1) { nodes { name } } }`, nil)
	for _, levels := range []int{1, 5, 20} {
		depth, got := estimate(t, fragmentBomb(levels), nil)
		if want := base << levels; got != want {
			t.Errorf("%d levels: cost %d, want %d (%d copies of %d)", levels, got, want, 1<<levels, base)
		}
		if depth != 3 {
			t.Errorf("%d levels: depth %d, want 3", levels, depth)
		}
	}
	// A fragment spread inside connections of different pages counts each
	// page's cost, not the first one it was computed for.
	_, got := estimate(t, `{ a: pods(first: 2) { ...P } b: pods(first: 5) { ...P } } fragment P on PodConnection { nodes { name } }`, nil)
	if want := (1 + 2*2) + (1 + 5*2); got != want {
		t.Errorf("fragment in two pages: cost %d, want %d", got, want)
	}
}

func TestCostOfAbuseIsOverTheLimit(t *testing.T) {
	for name, q := range map[string]string{
		"fragment bomb, 30 levels":                 fragmentBomb(30),
		"fragment bomb, 64 levels":                 fragmentBomb(64),
		"1400 aliased topologies":                  aliasedTopology("a", 1400),
		"10 aliased introspections":                aliasedIntrospection(10),
		"300 aliased types' fields' types' fields": aliasedTypeFields(300),
	} {
		_, c := estimate(t, q, nil)
		if c <= testLimits.maxComplexity {
			t.Errorf("%s: cost %d, want over %d", name, c, testLimits.maxComplexity)
		}
	}
}

// aliasedTypeFields asks n times for the fields of the types of Query's
// fields, as deep as validation lets introspection nest lists.
func aliasedTypeFields(n int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "t%d: __type(name: \"Query\") { fields { type { fields { name } } } } ", i)
	}
	b.WriteString("}")
	return b.String()
}

// aliasedIntrospection asks n times for every type as GraphiQL does.
func aliasedIntrospection(n int) string {
	var b strings.Builder
	b.WriteString("{ ")
	for i := range n {
		fmt.Fprintf(&b, "s%d: __schema { types { ...FullType } } ", i)
	}
	b.WriteString("}\n")
	_, fragment, _ := strings.Cut(introspectionQuery, "fragment FullType")
	b.WriteString("fragment FullType" + fragment)
	return b.String()
}

func TestCostAllowsWhatConsolesAsk(t *testing.T) {
	for name, q := range map[string]string{
		"GraphiQL's introspection": introspectionQuery,
		"README's example": `{
  clusters { name status { state serverVersion } overview { kind total healthy } }
  workloads(kinds: [DEPLOYMENT], filter: {namespace: "shop"}, orderBy: {field: NAME}) {
    totalCount
    nodes {
      name cluster { name } images readyReplicas replicas
      pods { nodes { name status node { name ip pool { name } allocated { cpuRequestsMillis } } } }
    }
  }
}`,
		"a page of 100 workloads with 100 pods each and a dozen fields": `{ workloads(first: 100) { nodes { name namespace pods(first: 100) { nodes { id name namespace status node { name } podIP nodeName phase restarts } } } } }`,
		"a topology": `{ topology(cluster: "a") { nodes { objectId kind name namespace healthy } edges { from to type } } }`,
	} {
		_, c := estimate(t, q, nil)
		if c > testLimits.maxComplexity {
			t.Errorf("%s: cost %d, over %d", name, c, testLimits.maxComplexity)
		}
	}
}

// TestEveryListHasABound keeps the tables honest: every list field of the
// schema is counted by a rule, and every table entry names a list that
// exists. A new list field fails here until it is given its bound.
func TestEveryListHasABound(t *testing.T) {
	s := servedSchema()
	named := map[string]bool{}
	for _, def := range s.Types {
		for _, f := range def.Fields {
			key := def.Name + "." + f.Name
			switch {
			case f.Type.Elem == nil, strings.HasPrefix(def.Name, "__"), def.Kind == ast.InputObject:
				continue
			case strings.HasSuffix(def.Name, "Connection") && (f.Name == "nodes" || f.Name == "edges"):
				continue
			case f.Arguments.ForName("first") != nil || f.Arguments.ForName("limit") != nil:
				named[key] = true
				continue
			}
			_, listed := unpagedLists[key]
			if !listed && !usageLists[key] {
				t.Errorf("list %s has no bound in unpagedLists (it counts %d)", key, clusterItems)
			}
			named[key] = true
		}
	}
	for _, table := range []map[string]int{unpagedLists, pagedLists} {
		for key := range table {
			if !named[key] {
				t.Errorf("%s is not a list field of the schema", key)
			}
		}
	}
	for key := range usageLists {
		if !named[key] {
			t.Errorf("%s is not a list field of the schema", key)
		}
	}
}

// TestRefusedBeforeAnyResolver runs the real executor with the limits and
// no resolvers: a refusal must come from the estimate, with its numbers,
// and the bomb must not hang (the context bounds the test, not a timing).
func TestRefusedBeforeAnyResolver(t *testing.T) {
	exec := executor.New(graph.NewExecutableSchema(graph.Config{}))
	exec.Use(testLimits)
	exec.SetParserTokenLimit(20000)
	deep := "name"
	for range 8 {
		deep = "owner { pods { nodes { " + deep + " } } }"
	}
	for _, tc := range []struct {
		name, query, measure string
		limit                int
	}{
		{"fragment bomb", fragmentBomb(40), "complexity", testLimits.maxComplexity},
		{"1400 aliased topologies", aliasedTopology("a", 1400), "complexity", testLimits.maxComplexity},
		{"too deep", "{ pods { nodes { " + deep + " } } }", "depth", testLimits.maxDepth},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(graphql.StartOperationTrace(context.Background()), time.Minute)
			defer cancel()
			done := make(chan struct{})
			var errs gqlerror.List
			go func() {
				defer close(done)
				_, errs = exec.CreateOperationContext(ctx, &graphql.RawParams{Query: tc.query})
			}()
			select {
			case <-done:
			case <-ctx.Done():
				t.Fatal("the estimate did not finish")
			}
			if len(errs) != 1 {
				t.Fatalf("errors %v, want one refusal", errs)
			}
			ext := errs[0].Extensions
			maxName := "max" + strings.ToUpper(tc.measure[:1]) + tc.measure[1:]
			if ext["code"] != errkind.CodeBadUserInput || ext[maxName] != tc.limit {
				t.Errorf("extensions %v, want code %s and %s %d", ext, errkind.CodeBadUserInput, maxName, tc.limit)
			}
			if n, ok := ext[tc.measure].(int); !ok || n <= tc.limit {
				t.Errorf("%s %v, want the measure, over %d", tc.measure, ext[tc.measure], tc.limit)
			}
		})
	}
}

// FuzzQueryCost: for any valid query, the estimate is the same as expanding
// every fragment where it is spread (the estimate before memoization), when
// that expansion is small enough to finish, and stays within its ceiling.
func FuzzQueryCost(f *testing.F) {
	for _, seed := range []string{
		fragmentBomb(30),
		aliasedTopology("a", 140), // 280,140: over the limit too, and small enough to mutate fast
		introspectionQuery,
		aliasedIntrospection(10),
		`{ ...A } fragment A on Query { pods(first: 100) { nodes { ...B } } } fragment B on Pod { owner { pods(first: 100) { nodes { owner { pods(first: 100) { nodes { name } } } } } } }`,
		`{ a: pods(first: 2) { ...P } b: pods(first: 5) { ...P } } fragment P on PodConnection { nodes { name ... on Pod { containers { name } } } }`,
		`query($n: Int) { viewer { clusters { namespaces(limit: $n) { name alerts { id } metering(first: 3) { samples } } } } }`,
		`{ topology(cluster: "a") { nodes { objectId } edges { from } } clusters { overview { kind } } }`,
		`{ __type(name: "Pod") { fields { type { fields { name args { name } } } } } }`,
		`subscription { watch(kind: "Pod") { type object { id ... on Pod { containers { name } } } } }`,
	} {
		f.Add(seed)
	}
	schema := servedSchema()
	f.Fuzz(func(t *testing.T, query string) {
		doc, err := parser.ParseQueryWithTokenLimit(&ast.Source{Input: query}, 20000)
		if err != nil || len(validator.ValidateWithRules(schema, doc, nil)) > 0 {
			return
		}
		for _, op := range doc.Operations {
			e := newEstimator(testPage, nil)
			cost, depth := e.cost(op.SelectionSet, outsideConnection), e.depth(op.SelectionSet)
			if cost < 0 || cost > costCeiling || depth < 0 {
				t.Fatalf("cost %d, depth %d", cost, depth)
			}
			ref := &expanding{e: newEstimator(testPage, nil), steps: 1 << 16}
			if want, ok := ref.cost(op.SelectionSet, outsideConnection); ok && want != cost {
				t.Fatalf("cost %d, expanding every fragment %d", cost, want)
			}
			ref.steps = 1 << 16
			if want, ok := ref.depth(op.SelectionSet); ok && want != depth {
				t.Fatalf("depth %d, expanding every fragment %d", depth, want)
			}
		}
	})
}

// expanding is the reference estimate: every fragment expanded wherever it
// is spread, no memo; it gives up (ok false) after steps selections.
type expanding struct {
	e     *estimator
	steps int
}

func (x *expanding) cost(set ast.SelectionSet, s scope) (total int, ok bool) {
	for _, sel := range set {
		if x.steps--; x.steps < 0 {
			return 0, false
		}
		var c int
		switch sel := sel.(type) {
		case *ast.Field:
			sub, ok := x.cost(sel.SelectionSet, x.e.childScope(sel, s))
			if !ok {
				return 0, false
			}
			c = mulCost(x.e.listItems(sel, s), addCost(1, sub))
		case *ast.InlineFragment:
			if c, ok = x.cost(sel.SelectionSet, s); !ok {
				return 0, false
			}
		case *ast.FragmentSpread:
			if c, ok = x.cost(sel.Definition.SelectionSet, s); !ok {
				return 0, false
			}
		}
		total = addCost(total, c)
	}
	return total, true
}

func (x *expanding) depth(set ast.SelectionSet) (deepest int, ok bool) {
	for _, sel := range set {
		if x.steps--; x.steps < 0 {
			return 0, false
		}
		var d int
		switch sel := sel.(type) {
		case *ast.Field:
			if d, ok = x.depth(sel.SelectionSet); !ok {
				return 0, false
			}
			d++
		case *ast.InlineFragment:
			if d, ok = x.depth(sel.SelectionSet); !ok {
				return 0, false
			}
		case *ast.FragmentSpread:
			if d, ok = x.depth(sel.Definition.SelectionSet); !ok {
				return 0, false
			}
		}
		deepest = max(deepest, d)
	}
	return deepest, true
}
