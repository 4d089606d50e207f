package api

import (
	"encoding/json"
	"math"
	"strconv"
	"sync"

	"github.com/vektah/gqlparser/v2/ast"

	"github.com/clustergraph/clustergraph/graph"
)

// The cost model. A query's cost estimates the fields it resolves: every
// field counts once per item it resolves to (once, for a field that is not
// a list), plus its selection once per item. Every list counts by the most
// it can return, so no list is cheap by accident, and aliases, inline
// fragments and fragment spreads all count, each as often as it appears.
// A fragment's cost depends only on the fragment and the scope it is spread
// in, so it is computed once per (name, scope) and reused: a chain of
// fragments spreading the previous one twice costs as many steps to
// estimate as it has fragments, however large the estimate.

// What a list without paging arguments counts: the most items it returns
// for one parent object, by how the list grows.
const (
	// ownItems bounds the lists of one object's own parts (containers,
	// conditions, ports, addresses, ...) and lists of kinds and verbs
	// (overview's 14 kinds, permissions' 15 resources, 7 verbs).
	ownItems = 20
	// cachedKinds bounds a list with one entry per kind a cluster caches
	// (21 today).
	cachedKinds = 32
	// fleetItems bounds a list with one entry per cluster.
	fleetItems = 20
	// clusterItems bounds a list that grows with a whole cluster and takes
	// no page (topology, the viewer's namespaces), and the limit such a
	// list may ask for. Any list the tables below do not name counts this
	// much, so a new list field is never cheap by omission.
	clusterItems = 1000
	// hourSamples is an hour of usage samples at the default interval
	// (1m), usageHistory's default window; daySamples is the default
	// retention (24h), the most any window returns then.
	hourSamples = 60
	daySamples  = 24 * hourSamples
	// onePage marks, in unpagedLists, a list of related objects counted as
	// a page of the server's size (MaxPage): a service's endpoints, one
	// per pod behind it.
	onePage = -1
)

// unpagedLists are the lists without first or limit, by "Type.field", with
// the items each counts. Connections' nodes and edges, lists with first or
// limit, and introspection are counted elsewhere (see listItems).
var unpagedLists = map[string]int{
	"Query.clusters":             fleetItems,
	"Viewer.clusters":            fleetItems,
	"NamespaceNameCheck.takenIn": fleetItems,
	"Query.versions":             clusterItems, // every cluster's apiserver and a ConfigMap's components
	"Topology.nodes":             clusterItems,
	"Topology.edges":             clusterItems,
	"DrainPayload.pods":          clusterItems,
	"ApplyPayload.results":       clusterItems,
	"Service.endpoints":          onePage,
	"Ingress.services":           ownItems,
	"Cluster.overview":           ownItems,
	"ClusterStatus.kinds":        cachedKinds,
	"Namespace.overview":         ownItems,
	"ViewerCluster.permissions":  ownItems,
	"Permission.verbs":           ownItems,
	"Viewer.groups":              ownItems,
	"Pod.containers":             ownItems,
	"KubeNode.roles":             ownItems,
	"KubeNode.addresses":         ownItems,
	"KubeNode.conditions":        ownItems,
	"KubeNode.taints":            ownItems,
	"NodePool.operatingSystems":  ownItems,
	"Workload.images":            ownItems,
	"Workload.conditions":        ownItems,
	"Service.externalAddresses":  ownItems,
	"Service.ports":              ownItems,
	"Endpoint.addresses":         ownItems,
	"Ingress.hosts":              ownItems,
	"Ingress.addresses":          ownItems,
	"Ingress.paths":              ownItems,
	"ObjectMeta.ownerReferences": ownItems,
}

// usageLists count hourSamples, or daySamples when since is given.
var usageLists = map[string]bool{"KubeNode.usageHistory": true, "Pod.usageHistory": true}

// pagedLists are the plain lists (not connections) that take first or
// limit: the most they return whatever is asked (the resolvers refuse more,
// or cut there). Without the argument they count its schema default, else
// the most. A plain list with first or limit not named here counts the
// default page.
var pagedLists = map[string]int{
	"ViewerCluster.namespaces": clusterItems,
}

// apiserverReads are the fields answered by apiserver requests rather than
// the caches, by "Type.field", with what each costs once on top of its
// items: resources() may read up to --max-list-objects objects per cluster
// (20 LIST pages at the default), as much as a walk of a whole cluster.
var apiserverReads = map[string]int{
	"Query.resources": clusterItems,
}

// fieldCost is what a field costs once, whatever it lists.
func fieldCost(f *ast.Field) int {
	if f.Definition == nil {
		return 0
	}
	return apiserverReads[owner(f)+"."+f.Name]
}

// costCeiling is where estimates stop growing: past every limit worth
// setting, and an int on every platform.
const costCeiling = math.MaxInt32

// depthCeiling is the depth of a fragment that spreads itself.
const depthCeiling = 1 << 20

// scope is what a selection's cost depends on besides its text: the
// memoization key of a fragment, with its name.
type scope struct {
	// page is the page size of the connection whose selection this is (its
	// nodes and edges count this many), or -1 outside connections.
	page  int
	intro introScope
}

// introScope tells which of the schema's types or fields an introspection
// object stands for, so its lists count by the schema's real sizes.
type introScope uint8

const (
	// introOne: one type or field; its lists count their longest.
	introOne introScope = iota //nolint:unused // the zero value: a scope no constant names is this one
	// introAllTypes: each of __schema.types; their lists, summed over
	// every type, are the schema's totals, so each counts the mean.
	introAllTypes
	// introAllFields: each field of each of __schema.types; args count
	// the mean over every field.
	introAllFields
)

var outsideConnection = scope{page: -1}

// estimator computes one operation's depth and cost.
type estimator struct {
	defaultPage int
	vars        map[string]any
	costs       map[spreadKey]int
	depths      map[string]int
}

type spreadKey struct {
	name  string
	scope scope
}

func newEstimator(defaultPage int, vars map[string]any) *estimator {
	return &estimator{defaultPage: defaultPage, vars: vars, costs: map[spreadKey]int{}, depths: map[string]int{}}
}

// cost is what resolving set once, for one object, costs: each field its
// items, plus its selection once per item.
func (e *estimator) cost(set ast.SelectionSet, s scope) int {
	total := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			total = addCost(total, fieldCost(sel))
			each := addCost(1, e.cost(sel.SelectionSet, e.childScope(sel, s)))
			total = addCost(total, mulCost(e.listItems(sel, s), each))
		case *ast.InlineFragment:
			total = addCost(total, e.cost(sel.SelectionSet, s))
		case *ast.FragmentSpread:
			total = addCost(total, e.spreadCost(sel, s))
		}
		if total == costCeiling {
			break
		}
	}
	return total
}

// spreadCost is a fragment's cost in a scope, computed once.
func (e *estimator) spreadCost(f *ast.FragmentSpread, s scope) int {
	key := spreadKey{f.Name, s}
	if c, ok := e.costs[key]; ok {
		return c
	}
	if f.Definition == nil {
		return 0
	}
	// Validation refuses cycles; should one get here, it costs too much
	// rather than recursing forever.
	e.costs[key] = costCeiling
	c := e.cost(f.Definition.SelectionSet, s)
	e.costs[key] = c
	return c
}

// depth is how deeply fields nest under set.
func (e *estimator) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		switch sel := sel.(type) {
		case *ast.Field:
			deepest = max(deepest, 1+e.depth(sel.SelectionSet))
		case *ast.InlineFragment:
			deepest = max(deepest, e.depth(sel.SelectionSet))
		case *ast.FragmentSpread:
			deepest = max(deepest, e.spreadDepth(sel))
		}
	}
	return deepest
}

// spreadDepth is a fragment's depth, computed once: it does not depend on
// where the fragment is spread.
func (e *estimator) spreadDepth(f *ast.FragmentSpread) int {
	if d, ok := e.depths[f.Name]; ok {
		return d
	}
	if f.Definition == nil {
		return 0
	}
	e.depths[f.Name] = depthCeiling // a cycle: too deep
	d := e.depth(f.Definition.SelectionSet)
	e.depths[f.Name] = d
	return d
}

// childScope is the scope of a field's selection.
func (e *estimator) childScope(f *ast.Field, s scope) scope {
	child := outsideConnection
	if isConnection(f) {
		child.page = e.page(f, e.defaultPage)
	}
	switch owner(f) + "." + f.Name {
	case "__Schema.types":
		child.intro = introAllTypes
	case "__Type.fields":
		if s.intro == introAllTypes {
			child.intro = introAllFields
		}
	}
	return child
}

// listItems is how many items a field resolves to for one parent object:
// 1 unless it is a list.
func (e *estimator) listItems(f *ast.Field, s scope) int {
	if f.Definition == nil || f.Definition.Type.Elem == nil {
		return 1
	}
	if s.page >= 0 && (f.Name == "nodes" || f.Name == "edges") {
		return s.page
	}
	key := owner(f) + "." + f.Name
	if n, ok := introspectionItems(key, s.intro); ok {
		return n
	}
	if takesPage(f) {
		most, ok := pagedLists[key]
		if !ok {
			most = e.defaultPage
		}
		return e.page(f, most)
	}
	switch n, ok := unpagedLists[key]; {
	case usageLists[key] && e.given(f, "since"):
		return daySamples
	case usageLists[key]:
		return hourSamples
	case n == onePage:
		return e.defaultPage
	case ok:
		return n
	}
	return clusterItems
}

// given reports an argument given a value other than null.
func (e *estimator) given(f *ast.Field, name string) bool {
	a := f.Arguments.ForName(name)
	if a == nil {
		return false
	}
	v, err := a.Value.Value(e.vars)
	return err != nil || v != nil
}

// page is the page a field asks for with first (else limit, as the
// resolvers read them), at most most; without either, the argument's schema
// default, else most. A value that cannot be read counts the most.
func (e *estimator) page(f *ast.Field, most int) int {
	for _, name := range []string{"first", "limit"} {
		if a := f.Arguments.ForName(name); a != nil {
			v, err := a.Value.Value(e.vars)
			if err != nil {
				return most
			}
			if v == nil {
				continue
			}
			n, ok := count(v)
			if !ok {
				return most
			}
			return min(max(n, 0), most)
		}
	}
	for _, name := range []string{"first", "limit"} {
		if a := f.Definition.Arguments.ForName(name); a != nil && a.DefaultValue != nil {
			if v, err := a.DefaultValue.Value(nil); err == nil {
				if n, ok := count(v); ok {
					return min(max(n, 0), most)
				}
			}
		}
	}
	return most
}

// count reads an Int argument as variables and literals carry it.
func count(v any) (int, bool) {
	var n int64
	switch v := v.(type) {
	case int:
		n = int64(v)
	case int32:
		n = int64(v)
	case int64:
		n = v
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > costCeiling {
			return 0, false
		}
		n = int64(v)
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			return 0, false
		}
		n = i
	case string:
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false
		}
		n = i
	default:
		return 0, false
	}
	return int(max(min(n, costCeiling), -1)), true
}

// isConnection reports a field that returns one page of a list: an object
// with nodes and edges, paged by first/limit.
func isConnection(f *ast.Field) bool {
	return f.Definition != nil && f.Definition.Type.Elem == nil && takesPage(f)
}

func takesPage(f *ast.Field) bool {
	args := f.Definition.Arguments
	return args.ForName("first") != nil || args.ForName("limit") != nil
}

// owner names the type a field is selected on.
func owner(f *ast.Field) string {
	if f.ObjectDefinition == nil {
		return ""
	}
	return f.ObjectDefinition.Name
}

func addCost(a, b int) int {
	if a >= costCeiling-b {
		return costCeiling
	}
	return a + b
}

func mulCost(a, b int) int {
	if a == 0 || b == 0 {
		return 0
	}
	if a > costCeiling/b {
		return costCeiling
	}
	return a * b
}

// introspectionItems counts the lists of introspection types by the served
// schema's real sizes: a list of one type (or field) its longest, a list
// of each of every type (or field) its mean, rounded up, since summed over
// all of them that is the schema's total. ok is false for other fields.
func introspectionItems(key string, in introScope) (n int, ok bool) {
	sz := servedSchemaSize()
	pick := func(l listSize, all introScope) int {
		if in == all {
			return l.mean
		}
		return l.longest
	}
	switch key {
	case "__Schema.types":
		return sz.types, true
	case "__Schema.directives":
		return sz.directives, true
	case "__Type.fields":
		return pick(sz.fields, introAllTypes), true
	case "__Type.inputFields":
		return pick(sz.inputFields, introAllTypes), true
	case "__Type.enumValues":
		return pick(sz.enumValues, introAllTypes), true
	case "__Type.interfaces":
		return pick(sz.interfaces, introAllTypes), true
	case "__Type.possibleTypes":
		return pick(sz.possibleTypes, introAllTypes), true
	case "__Field.args":
		return pick(sz.args, introAllFields), true
	case "__Directive.args":
		return sz.directiveArgs, true
	case "__Directive.locations":
		return sz.locations, true
	}
	return 0, false
}

// schemaSize measures a schema for introspection's lists.
type schemaSize struct {
	types, directives, directiveArgs, locations                      int
	fields, inputFields, enumValues, interfaces, possibleTypes, args listSize
}

// listSize is a list's longest length and its mean over every type (for
// args: over every field), rounded up.
type listSize struct{ longest, mean int }

// servedSchemaSize measures the schema this server serves, once.
var servedSchemaSize = sync.OnceValue(func() schemaSize {
	return measureSchema(graph.NewExecutableSchema(graph.Config{}).Schema())
})

func measureSchema(s *ast.Schema) schemaSize {
	var fields, inputs, enums, ifaces, possible, args []int
	for _, def := range s.Types {
		switch def.Kind {
		case ast.Object, ast.Interface:
			n := 0
			for _, f := range def.Fields {
				if len(f.Name) > 1 && f.Name[:2] == "__" {
					continue // __schema, __type and __typename are not listed
				}
				n++
				args = append(args, len(f.Arguments))
			}
			fields = append(fields, n)
			ifaces = append(ifaces, len(def.Interfaces))
		case ast.InputObject:
			inputs = append(inputs, len(def.Fields))
		case ast.Enum:
			enums = append(enums, len(def.EnumValues))
		}
		if def.IsAbstractType() {
			possible = append(possible, len(s.GetPossibleTypes(def)))
		}
	}
	sz := schemaSize{types: len(s.Types), directives: len(s.Directives)}
	for _, d := range s.Directives {
		sz.directiveArgs = max(sz.directiveArgs, len(d.Arguments))
		sz.locations = max(sz.locations, len(d.Locations))
	}
	perType := func(ns []int) listSize { return sizeOf(ns, len(s.Types)) }
	sz.fields, sz.inputFields, sz.enumValues = perType(fields), perType(inputs), perType(enums)
	sz.interfaces, sz.possibleTypes = perType(ifaces), perType(possible)
	sz.args = sizeOf(args, len(args))
	return sz
}

// sizeOf is the longest of ns and their sum spread over items, rounded up.
func sizeOf(ns []int, over int) listSize {
	var l listSize
	sum := 0
	for _, n := range ns {
		l.longest = max(l.longest, n)
		sum += n
	}
	if over > 0 {
		l.mean = (sum + over - 1) / over
	}
	return l
}
