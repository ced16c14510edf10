package clients

import (
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// FuzzRESTConfigFromKubeconfig feeds arbitrary bytes of a kubeconfig
// Secret to restConfigFromKubeconfig. Nothing may panic. A refusal is
// ErrInvalidKubeconfig whose message is the Secret's name followed by one
// of the reasons written in kubeconfig.go, word for word: so no byte of the
// input, and no token, key or password in it, can reach the message. An
// accepted config has a host, runs no plugin, reads no file of the worker
// and makes an HTTP client (as the manager's build does) without panicking.
func FuzzRESTConfigFromKubeconfig(f *testing.F) {
	reasons := invalidReasons(f, "kubeconfig.go")
	secret := types.NamespacedName{Namespace: testConfigNamespace, Name: "fuzz-kubeconfig"}
	prefix := fmt.Sprintf(`KubevirtConfig "fuzz": invalid kubeconfig: Secret %s key "kubeconfig" `, secret)
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := restConfigFromKubeconfig("fuzz", secret, data)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidKubeconfig)
			require.NoError(t, errors.Unwrap(err), "a parse or validation error of client-go is kept as the cause")
			for _, msg := range []string{err.Error(), fmt.Sprintf("%+v", err)} {
				reason, ok := strings.CutPrefix(msg, prefix)
				require.True(t, ok && reasons[reason], "the message is not the Secret's name and one of our reasons: %q", msg)
			}
			return
		}
		require.NotEmpty(t, cfg.Host, "accepted a config without a host")
		require.Nil(t, cfg.ExecProvider, "accepted an exec plugin")
		require.Nil(t, cfg.AuthProvider, "accepted an auth-provider plugin")
		require.Empty(t, cfg.BearerTokenFile+cfg.CAFile+cfg.CertFile+cfg.KeyFile, "accepted a file reference")
		_, _ = rest.HTTPClientFor(cfg)
	})
}

// invalidReasons returns the string constants that file passes to a
// function named invalid: the reasons restConfigFromKubeconfig may give.
func invalidReasons(t testing.TB, file string) map[string]bool {
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	require.NoError(t, err)
	reasons := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		if call, ok := n.(*ast.CallExpr); ok {
			if fn, ok := call.Fun.(*ast.Ident); ok && fn.Name == "invalid" && len(call.Args) == 1 {
				s, ok := stringConstant(call.Args[0])
				require.True(t, ok, "invalid is called with a reason that is not a string constant")
				reasons[s] = true
			}
		}
		return true
	})
	require.NotEmpty(t, reasons)
	return reasons
}

// stringConstant evaluates a string literal or a sum of them.
func stringConstant(e ast.Expr) (string, bool) {
	switch e := e.(type) {
	case *ast.BasicLit:
		s, err := strconv.Unquote(e.Value)
		return s, err == nil && e.Kind == token.STRING
	case *ast.BinaryExpr:
		x, okX := stringConstant(e.X)
		y, okY := stringConstant(e.Y)
		return x + y, okX && okY && e.Op == token.ADD
	case *ast.ParenExpr:
		return stringConstant(e.X)
	}
	return "", false
}
