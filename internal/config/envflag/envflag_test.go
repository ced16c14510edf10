package envflag

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type settings struct {
	name    string
	token   string
	timeout time.Duration
	count   int
	elect   bool
}

func bind() (*flag.FlagSet, *Binder, *settings) {
	fs := flag.NewFlagSet("prog", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	b := New(fs)
	s := &settings{}
	b.String(&s.name, "name", "NAME", "dflt", "a name")
	b.Secret(&s.token, "token", "TOKEN", "a token")
	b.Duration(&s.timeout, "timeout", "TIMEOUT", 30*time.Second, "a timeout")
	b.Int(&s.count, "count", "COUNT", 3, "a count")
	b.Bool(&s.elect, "elect", "ELECT", true, "elect a leader")
	return fs, b, s
}

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestPrecedenceFlagThenEnvThenDefault(t *testing.T) {
	fs, b, s := bind()
	require.NoError(t, b.ApplyEnv(env(map[string]string{"NAME": "from-env", "TIMEOUT": "1m", "TOKEN": "t0k"})))
	require.NoError(t, fs.Parse([]string{"--timeout", "5s"}))
	assert.Equal(t, settings{name: "from-env", token: "t0k", timeout: 5 * time.Second, count: 3, elect: true}, *s)
}

func TestBoolPrecedence(t *testing.T) {
	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
		want bool
	}{
		"default":               {nil, nil, true},
		"variable":              {map[string]string{"ELECT": "false"}, nil, false},
		"variable as a number":  {map[string]string{"ELECT": "0"}, nil, false},
		"flag alone wins":       {map[string]string{"ELECT": "false"}, []string{"--elect"}, true},
		"flag with value wins":  {map[string]string{"ELECT": "true"}, []string{"--elect=false"}, false},
		"flag over the default": {nil, []string{"-elect=0"}, false},
	} {
		t.Run(name, func(t *testing.T) {
			fs, b, s := bind()
			require.NoError(t, b.ApplyEnv(env(tc.env)))
			require.NoError(t, fs.Parse(tc.args))
			assert.Equal(t, tc.want, s.elect)
			assert.Empty(t, fs.Args(), "a bool flag takes no separate argument")
		})
	}
}

func TestEnvErrorsNameTheVariableAndHideSecrets(t *testing.T) {
	_, b, _ := bind()
	err := b.ApplyEnv(env(map[string]string{"TIMEOUT": "soon", "COUNT": "many", "ELECT": "maybe"}))
	require.Error(t, err)
	lines := strings.Split(err.Error(), "\n")
	assert.Equal(t, []string{`TIMEOUT="soon": not a duration (e.g. 30s, 2m)`, `COUNT="many": parse error`, `ELECT="maybe": not a boolean (true or false)`}, lines)
}

func TestUsageShowsVariableAndNoSecretDefault(t *testing.T) {
	fs, _, _ := bind()
	assert.Equal(t, "a name [$NAME]", fs.Lookup("name").Usage)
	assert.Equal(t, "", fs.Lookup("token").DefValue)
	assert.Equal(t, "30s", fs.Lookup("timeout").DefValue)
	assert.Equal(t, "true", fs.Lookup("elect").DefValue)
	assert.Equal(t, "elect a leader [$ELECT]", fs.Lookup("elect").Usage)
	err := fs.Parse([]string{"--timeout", "x"})
	require.EqualError(t, err, `invalid value "x" for flag -timeout: not a duration (e.g. 30s, 2m)`)
}

func TestParseTakesFlagsOnlyAndReturnsVariableErrorsApart(t *testing.T) {
	fs, b, s := bind()
	envErr, err := b.Parse([]string{"--count=7"}, env(map[string]string{"TIMEOUT": "soon", "NAME": "n"}))
	require.NoError(t, err)
	require.EqualError(t, envErr, `TIMEOUT="soon": not a duration (e.g. 30s, 2m)`)
	assert.Equal(t, settings{name: "n", timeout: 30 * time.Second, count: 7, elect: true}, *s)
	assert.Equal(t, "prog", fs.Name())

	_, b, _ = bind()
	envErr, err = b.Parse([]string{"--count=1", "extra", "--name=x"}, env(map[string]string{"TIMEOUT": "soon"}))
	require.EqualError(t, err, `unexpected argument "extra": the prog takes flags only`)
	assert.NoError(t, envErr, "a command line that stops loading is reported alone")

	_, b, _ = bind()
	_, err = b.Parse([]string{"-h"}, env(nil))
	require.ErrorIs(t, err, flag.ErrHelp)

	_, b, _ = bind()
	_, err = b.Parse([]string{"--count=x"}, env(nil))
	require.EqualError(t, err, `invalid value "x" for flag -count: parse error`)
}

func TestFloat32(t *testing.T) {
	for name, tc := range map[string]struct {
		env     map[string]string
		args    []string
		want    float32
		wantErr string
	}{
		"default":        {nil, nil, 50, ""},
		"variable":       {map[string]string{"QPS": "2.5"}, nil, 2.5, ""},
		"flag wins":      {map[string]string{"QPS": "2.5"}, []string{"--qps=400"}, 400, ""},
		"not a number":   {map[string]string{"QPS": "fast"}, nil, 50, `QPS="fast": not a number (e.g. 50, 2.5)`},
		"NaN":            {map[string]string{"QPS": "NaN"}, nil, 50, `QPS="NaN": not a number (e.g. 50, 2.5)`},
		"infinite":       {map[string]string{"QPS": "+Inf"}, nil, 50, `QPS="+Inf": not a number (e.g. 50, 2.5)`},
		"beyond float32": {map[string]string{"QPS": "1e39"}, nil, 50, `QPS="1e39": not a number (e.g. 50, 2.5)`},
	} {
		t.Run(name, func(t *testing.T) {
			fs := flag.NewFlagSet("prog", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			b := New(fs)
			var qps float32
			b.Float32(&qps, "qps", "QPS", 50, "requests per second")
			envErr, err := b.Parse(tc.args, env(tc.env))
			require.NoError(t, err)
			if tc.wantErr != "" {
				require.EqualError(t, envErr, tc.wantErr)
			} else {
				require.NoError(t, envErr)
			}
			assert.Equal(t, tc.want, qps)
			assert.Equal(t, "50", fs.Lookup("qps").DefValue)
			assert.Equal(t, "requests per second [$QPS]", fs.Lookup("qps").Usage)
		})
	}
}
