package activities

import (
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestActivityNamesMatchMethods keeps the *Name constants of types.go and
// the exported methods of *Activities one and the same list: workflows
// schedule by constant, the worker registers by method name.
func TestActivityNamesMatchMethods(t *testing.T) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "types.go", nil, 0)
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
