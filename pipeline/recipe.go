package pipeline

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/pare-dev/pare/calib"
	"go.yaml.in/yaml/v3"
)

// A recipe is pare run's YAML file: the models, the steps each model
// goes through (prune, quant, check, bench, with the options of the
// commands of the same names), the gates a run must pass, and an
// optional sweep grid. docs/CLI.md (section run) describes the format.
type Recipe struct {
	Path string // as given on the command line
	// Dir is the directory relative paths are resolved against: the
	// recipe's own, or its dir: key.
	Dir    string
	Models []value
	Steps  []*recipeStep
	Gates  []recipeGate
	Sweep  []sweepAxis
	kinds  Steps
}

// value is a scalar with where it came from, for messages.
type value struct {
	Text  string
	Where string // "recipe.yaml:12" or "--set prune.ratio=0.3"
}

type recipeStep struct {
	Kind  string
	Where string
	Opts  []option
}

type option struct {
	Name  string
	Value value
}

// recipeErr is a recipe mistake; it is a usage error (exit 2) and its
// message starts with the file and line.
func recipeErr(where, format string, args ...any) error {
	return usageErrorf("%s: %s", where, fmt.Sprintf(format, args...))
}

// ErrUsage marks a mistake in a recipe or in pare run's options.
var ErrUsage = errors.New("usage error")

type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == ErrUsage }

func usageErrorf(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

func (r *Recipe) at(n *yaml.Node) string { return fmt.Sprintf("%s:%d", r.Path, n.Line) }

// loadRecipe reads and checks a recipe file: its structure, every step's
// option names and value types, file options that must exist, gate
// values and the sweep grid. Checks that need the whole run (models from
// the command line, sweeps given as flags) come later, in
// Recipe.Validate.
func Load(path string, steps Steps) (*Recipe, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("run: recipe: %v", err)
	}
	return Parse(path, b, steps)
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): `)

// Parse reads a recipe from b; path names it in messages and relative
// paths resolve against its directory.
func Parse(path string, b []byte, kinds Steps) (*Recipe, error) {
	r := &Recipe{Path: path, Dir: filepath.Dir(path), kinds: kinds}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := err.Error()
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			return nil, recipeErr(path+":"+m[1], "%s", strings.TrimPrefix(msg, m[0]))
		}
		return nil, recipeErr(path+":1", "%s", strings.TrimPrefix(msg, "yaml: "))
	}
	if len(doc.Content) == 0 {
		return nil, recipeErr(path+":1", "empty recipe: want a mapping with steps:")
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, recipeErr(r.at(root), "a recipe is a mapping (models:, steps:, gates:, sweep:), not a %s", kindName(root))
	}
	var steps *yaml.Node
	err := eachPair(r, root, func(k, v *yaml.Node) error {
		switch k.Value {
		case "models":
			return r.parseModels(v)
		case "steps":
			steps = v
			return r.parseSteps(v)
		case "gates":
			return r.parseGates(v)
		case "sweep":
			return r.parseSweep(v)
		case "dir":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return recipeErr(r.at(v), "dir: want a directory path")
			}
			r.Dir = r.resolve(v.Value)
			return nil
		}
		return recipeErr(r.at(k), "unknown key %q (want models, steps, gates, sweep or dir)", k.Value)
	})
	if err != nil {
		return nil, err
	}
	if steps == nil {
		return nil, recipeErr(r.at(root), "no steps: (want a list of prune, quant, check, bench)")
	}
	// dir: may come after the paths it applies to, so files are checked
	// once the whole mapping is read.
	if err := r.checkFiles(); err != nil {
		return nil, err
	}
	if err := r.resolveSweep(); err != nil {
		return nil, err
	}
	return r, nil
}

// eachPair walks a mapping, refusing duplicate and non-scalar keys.
func eachPair(r *Recipe, m *yaml.Node, f func(k, v *yaml.Node) error) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return recipeErr(r.at(k), "keys must be plain names")
		}
		if line, dup := seen[k.Value]; dup {
			return recipeErr(r.at(k), "%q given twice (first on line %d)", k.Value, line)
		}
		seen[k.Value] = k.Line
		if err := f(k, v); err != nil {
			return err
		}
	}
	return nil
}

func (r *Recipe) parseModels(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode {
		return recipeErr(r.at(v), "models: want a list of model paths, not a %s", kindName(v))
	}
	for _, n := range v.Content {
		if n.Kind != yaml.ScalarNode || n.Value == "" {
			return recipeErr(r.at(n), "models: each entry is a model path")
		}
		r.Models = append(r.Models, value{Text: n.Value, Where: r.at(n)})
	}
	return nil
}

func (r *Recipe) parseSteps(v *yaml.Node) error {
	if v.Kind != yaml.SequenceNode || len(v.Content) == 0 {
		return recipeErr(r.at(v), "steps: want a non-empty list of prune, quant, check, bench")
	}
	for _, n := range v.Content {
		st := &recipeStep{Where: r.at(n)}
		var opts *yaml.Node
		switch {
		case n.Kind == yaml.ScalarNode:
			st.Kind = n.Value
		case n.Kind == yaml.MappingNode && len(n.Content) == 2:
			st.Kind, opts = n.Content[0].Value, n.Content[1]
		default:
			return recipeErr(r.at(n), "a step is a name (check) or a name with options (prune: {ratio: 0.3})")
		}
		kind, ok := r.kinds[st.Kind]
		if !ok {
			return recipeErr(r.at(n), "unknown step %q (want %s)", st.Kind, strings.Join(r.kinds.names(), ", "))
		}
		if opts != nil && opts.Tag != "!!null" {
			if opts.Kind != yaml.MappingNode {
				return recipeErr(r.at(opts), "%s: options are a mapping (name: value), not a %s", st.Kind, kindName(opts))
			}
			err := eachPair(r, opts, func(k, val *yaml.Node) error {
				if val.Kind != yaml.ScalarNode {
					return recipeErr(r.at(val), "%s: option %q wants a single value, not a %s", st.Kind, k.Value, kindName(val))
				}
				o := option{Name: k.Value, Value: value{Text: val.Value, Where: r.at(k)}}
				if err := kind.checkOption(o.Name, o.Value); err != nil {
					return err
				}
				st.Opts = append(st.Opts, o)
				return nil
			})
			if err != nil {
				return err
			}
		}
		r.Steps = append(r.Steps, st)
	}
	return nil
}

// checkFiles checks that models and file options name readable files.
func (r *Recipe) checkFiles() error {
	for _, m := range r.Models {
		if err := Readable(r.resolve(m.Text)); err != nil {
			return recipeErr(m.Where, "model: %v", unwrapPath(err))
		}
	}
	for _, st := range r.Steps {
		for _, o := range st.Opts {
			if err := r.checkFileOption(st.Kind, o.Name, o.Value); err != nil {
				return err
			}
		}
	}
	for _, ax := range r.Sweep {
		for _, v := range ax.Values {
			if err := r.checkFileOption(ax.stepKind(r), ax.Option, v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Recipe) checkFileOption(step, name string, v value) error {
	if !fileOptions[name] {
		return nil
	}
	if dataOptions[name] {
		// Refused in the words every command uses for that file.
		if err := calib.Readable(r.resolve(v.Text)); err != nil {
			return recipeErr(v.Where, "%s: %v", step, err)
		}
		return nil
	}
	if err := Readable(r.resolve(v.Text)); err != nil {
		return recipeErr(v.Where, "%s: %s: %v", step, name, unwrapPath(err))
	}
	return nil
}

// resolve makes a recipe path absolute against the recipe's directory.
func (r *Recipe) resolve(p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	abs, err := filepath.Abs(filepath.Join(r.Dir, p))
	if err != nil {
		return filepath.Join(r.Dir, p)
	}
	return abs
}

// unwrapPath drops the operation from a *PathError ("open x: no such
// file" becomes "x: no such file").
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	case yaml.ScalarNode:
		return "single value " + strconv.Quote(n.Value)
	}
	return "node"
}

// Readable checks that path is a regular file that can be opened.
func Readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return nil
}
