package activities

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/machineflow/machineflow/activities/contract"
)

// TestActivityNamesMatchMethods keeps the *Name constants of the contract and
// the exported methods of *Activities one and the same list: workflows
// schedule by constant, the worker registers by method name.
func TestActivityNamesMatchMethods(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, contractSource, nil, 0)
	require.NoError(t, err)
	var constants []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasSuffix(name.Name, "Name") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				require.True(t, ok, "%s is not a string literal", name.Name)
				value, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				require.Equal(t, strings.TrimSuffix(name.Name, "Name"), value, "constant %s", name.Name)
				constants = append(constants, value)
			}
		}
	}
	var methods []string
	typ := reflect.TypeOf(&Activities{})
	for i := 0; i < typ.NumMethod(); i++ {
		methods = append(methods, typ.Method(i).Name)
	}
	sort.Strings(constants)
	sort.Strings(methods)
	require.NotEmpty(t, constants)
	require.Equal(t, constants, methods)
}

// TestFinalErrorTypesAreListed keeps NonRetryableErrorTypes in step with
// the errors the activities raise: a type raised as final somewhere must
// be listed (workflows stop on it however it is raised), and a type raised
// as retryable must not be.
func TestFinalErrorTypesAreListed(t *testing.T) {
	fset := token.NewFileSet()
	sources, err := filepath.Glob("*.go")
	require.NoError(t, err)
	sources = append(sources, contractSource)
	values := map[string]string{}
	raised := map[string]bool{} // error type → raised as final
	for _, path := range sources {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		require.NoError(t, err)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				for i, name := range n.Names {
					if lit, ok := valueAt(n.Values, i).(*ast.BasicLit); ok && strings.HasPrefix(name.Name, "ErrType") {
						values[name.Name], _ = strconv.Unquote(lit.Value)
					}
				}
			case *ast.CallExpr:
				if fn, ok := n.Fun.(*ast.Ident); ok && fn.Name == "newAppError" {
					errType, typeOK := n.Args[0].(*ast.SelectorExpr)
					final, finalOK := n.Args[1].(*ast.Ident)
					if typeOK && finalOK && strings.HasPrefix(errType.Sel.Name, "ErrType") {
						isFinal := final.Name == "true"
						if prev, seen := raised[errType.Sel.Name]; seen && prev != isFinal {
							t.Errorf("%s: %s is raised both as final and as retryable", fset.Position(n.Pos()), errType.Sel.Name)
						}
						raised[errType.Sel.Name] = isFinal
					}
				}
			}
			return true
		})
	}
	listed := contract.NonRetryableErrorTypes()
	require.NotEmpty(t, raised)
	for name, final := range raised {
		value, ok := values[name]
		require.True(t, ok, "%s is not a string constant of the contract", name)
		assert.Equal(t, final, slices.Contains(listed, value), "%s (%q) raised with final=%v", name, value, final)
	}
	for _, c := range clientsErrorTypes {
		assert.Equal(t, c.final, slices.Contains(listed, c.errType), "%s for %v", c.errType, c.sentinel)
	}
}

// contractSource declares the activity names and error types.
const contractSource = "contract/contract.go"

func valueAt(values []ast.Expr, i int) ast.Expr {
	if i < len(values) {
		return values[i]
	}
	return nil
}
