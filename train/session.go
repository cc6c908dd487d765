package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/foundryhq/foundry/model/nn"

	"github.com/foundryhq/foundry/internal/atomicfile"

	"github.com/foundryhq/foundry/engine"
	"github.com/foundryhq/foundry/model"
	"github.com/foundryhq/foundry/safetensors"
	"github.com/foundryhq/foundry/train/lora"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph" //nolint:revive // graph code reads best unqualified
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	mlctx "github.com/gomlx/gomlx/pkg/ml/context"
	"github.com/gomlx/gomlx/pkg/ml/train/optimizers"
)

// accumScope holds the gradient accumulators, one per trainable variable.
const accumScope = "/train_accum"

// session is a model in a GoMLX context with its compiled training and evaluation steps.
type session struct {
	cfg     Config
	mcfg    model.Config
	backend *engine.Backend
	ctx     *mlctx.Context
	dtype   dtypes.DType
	base    map[string]bool // ScopeAndName of frozen base weights (not checkpointed)
	// Exec per role: a micro-batch that only accumulates, one that also
	// applies the update, and evaluation.
	accum, apply, eval *mlctx.Exec
	tmpDir             string // random initial weights for Full from scratch
	log                *slog.Logger
}

func newSession(cfg Config, b *engine.Backend, log *slog.Logger) (*session, error) {
	nn.RegisterGradients()
	s := &session{cfg: cfg, backend: b, ctx: mlctx.New(), base: map[string]bool{}, log: log}
	m, err := s.openBase()
	if err != nil {
		return nil, err
	}
	defer m.Close()
	s.mcfg = m.Config
	s.dtype = b.DType
	if s.dtype == dtypes.InvalidDType || cfg.Full {
		s.dtype = dtypes.Float32 // full fine-tuning keeps f32 weights (no master copy yet)
	}
	if err := m.Bind(s.ctx, s.dtype); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	for v := range s.ctx.IterVariables() {
		if cfg.Full {
			v.SetTrainable(true)
		} else {
			s.base[v.ScopeAndName()] = true
		}
	}
	if !cfg.Full {
		if err := lora.Init(s.ctx, s.mcfg, cfg.LoRA, cfg.Seed); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
	}
	if err := s.compile(); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return s, nil
}

// openBase loads the base model; for Full training from a directory with
// only config.json, it first writes random weights (seeded) to a temporary directory.
func (s *session) openBase() (*model.Model, error) {
	dir := s.cfg.Base
	if s.cfg.Full {
		if matches, _ := filepath.Glob(filepath.Join(dir, "*.safetensors")); len(matches) == 0 {
			mc, err := model.LoadConfig(dir)
			if err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			tmp, err := os.MkdirTemp("", "foundry-init-*")
			if err != nil {
				return nil, fmt.Errorf("train: %w", err)
			}
			s.tmpDir = tmp
			if err := model.WriteRandom(tmp, mc, s.cfg.Seed); err != nil {
				return nil, fmt.Errorf("train: random initial weights: %w", err)
			}
			s.log.Info("train: no weights in the base directory; starting from random weights", "base", dir)
			dir = tmp
		}
	}
	m, err := model.Load(dir)
	if err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return m, nil
}

func (s *session) close() {
	for _, e := range []*mlctx.Exec{s.accum, s.apply, s.eval} {
		if e != nil {
			e.Finalize()
		}
	}
	if s.tmpDir != "" {
		_ = os.RemoveAll(s.tmpDir)
	}
}

// forwardLoss builds Σ weights·CE for one batch; rng non-nil turns on dropout.
func (s *session) forwardLoss(ctx *mlctx.Context, tokens, positions, segments, targets, weights, rng *Node, withGrad bool) *Node {
	opts := model.Options{DType: s.dtype, Segments: segments}
	if !s.cfg.Full {
		opts.Hook = s.cfg.LoRA.TrainingHook(rng)
	}
	return batchLoss(ctx, s.mcfg, opts, tokens, positions, targets, weights, s.cfg.LossChunk, withGrad)
}

// batchLoss runs the model over tokens [B, T] at positions (nil: 0..T-1)
// and returns Σ weights·CE of predicting targets (chunk positions of logits
// at a time).
func batchLoss(ctx *mlctx.Context, cfg model.Config, opts model.Options, tokens, positions, targets, weights *Node, chunk int, withGrad bool) *Node {
	if positions == nil {
		positions = Iota(tokens.Graph(), tokens.Shape(), 1)
	}
	hidden := model.Decoder(ctx, cfg, tokens, positions, nil, opts)
	return crossEntropy(ctx, cfg, hidden, targets, weights, chunk, withGrad)
}

func (s *session) compile() error {
	step := func(apply bool) func(ctx *mlctx.Context, in []*Node) []*Node {
		return func(ctx *mlctx.Context, in []*Node) []*Node {
			tokens, targets, weights, positions, segments, invN, lr, rng := in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7]
			g := tokens.Graph()
			ctx.SetTraining(g, true)
			lossSum := s.forwardLoss(ctx, tokens, positions, segments, targets, weights, rng, true)
			grads := ctx.BuildTrainableVariablesGradientsGraph(Mul(lossSum, invN))
			var vars []*mlctx.Variable
			for v := range ctx.IterVariables() {
				if v.Trainable && v.InUseByGraph(g) {
					vars = append(vars, v)
				}
			}
			if len(vars) != len(grads) {
				panic(fmt.Errorf("%d gradients for %d trainable variables", len(grads), len(vars)))
			}
			if s.cfg.Accum > 1 {
				for i, v := range vars {
					acc := ctx.InAbsPath(accumScope+v.Scope()).Checked(false).
						VariableWithValue(v.Name(), tensors.FromShape(v.Shape())).SetTrainable(false)
					sum := Add(acc.ValueGraph(g), grads[i])
					if apply {
						grads[i] = sum
						acc.SetValueGraph(ZerosLike(sum))
					} else {
						acc.SetValueGraph(sum)
					}
				}
			}
			if !apply {
				return []*Node{lossSum}
			}
			sq := ScalarZero(g, dtypes.Float32)
			for _, gr := range grads {
				sq = Add(sq, ReduceAllSum(Square(ConvertDType(gr, dtypes.Float32))))
			}
			norm := Sqrt(sq)
			if c := s.cfg.ClipNorm; c > 0 {
				factor := Min(OnesLike(norm), Div(Scalar(g, dtypes.Float32, c), AddScalar(norm, 1e-6)))
				for i, gr := range grads {
					grads[i] = Mul(gr, ConvertDType(factor, gr.DType()))
				}
			}
			optimizers.LearningRateVar(ctx, dtypes.Float32, s.cfg.LR).SetValueGraph(lr)
			optimizers.Adam().Betas(0.9, 0.999).Epsilon(1e-8).WeightDecay(s.cfg.WeightDecay).
				LearningRate(s.cfg.LR).Done().(interface {
				UpdateGraphWithGradients(*mlctx.Context, []*Node, dtypes.DType)
			}).UpdateGraphWithGradients(ctx, grads, dtypes.Float32)
			return []*Node{lossSum, norm}
		}
	}
	var err error
	if s.apply, err = mlctx.NewExec(s.backend, s.ctx, step(true)); err != nil {
		return err
	}
	if s.accum, err = mlctx.NewExec(s.backend, s.ctx, step(false)); err != nil {
		return err
	}
	s.eval, err = mlctx.NewExec(s.backend, s.ctx, func(ctx *mlctx.Context, tokens, targets, weights, positions, segments *Node) *Node {
		return s.forwardLoss(ctx, tokens, positions, segments, targets, weights, nil, false)
	})
	return err
}

// run executes e, turning a panic while building or running the graph into an error.
func run(e *mlctx.Exec, args ...any) (out []*tensors.Tensor, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("graph failed: %v", p)
		}
	}()
	return e.Exec(args...)
}

func scalar(t *tensors.Tensor) float64 {
	defer func() { _ = t.FinalizeAll() }()
	switch v := t.Value().(type) {
	case float32:
		return float64(v)
	case float64:
		return v
	}
	return 0
}

func batchArgs(b batch) []any {
	return []any{
		tensors.FromFlatDataAndDimensions(b.Inputs, b.B, b.T),
		tensors.FromFlatDataAndDimensions(b.Targets, b.B, b.T),
		tensors.FromFlatDataAndDimensions(b.Weights, b.B, b.T),
		tensors.FromFlatDataAndDimensions(b.Positions, b.B, b.T),
		tensors.FromFlatDataAndDimensions(b.Segments, b.B, b.T),
	}
}

// trainMicro runs one micro-batch; apply ends the optimizer step. invN is
// 1/(loss tokens of the whole step); micro numbers the micro-batch in the
// run, seeding its dropout. It returns the micro-batch's loss sum.
func (s *session) trainMicro(b batch, apply bool, invN, lr float64, seed uint64, micro int) (float64, error) {
	rng, err := RNGStateFromSeed(int64(seed*1_000_003) + int64(micro))
	if err != nil {
		return 0, err
	}
	args := append(batchArgs(b), tensors.FromScalar(float32(invN)), tensors.FromScalar(float32(lr)), rng)
	e := s.accum
	if apply || s.cfg.Accum == 1 {
		e = s.apply
	}
	out, err := run(e, args...)
	if err != nil {
		return 0, err
	}
	for _, t := range out[1:] {
		_ = t.FinalizeAll()
	}
	return scalar(out[0]), nil
}

func (s *session) evalLoss(b batch) (float64, error) {
	out, err := run(s.eval, batchArgs(b)...)
	if err != nil {
		return 0, err
	}
	return scalar(out[0]), nil
}

// Checkpoints: Out/checkpoint holds state.safetensors (every variable but
// the frozen base: adapter, optimizer moments, step counters, gradient
// accumulators) and trainer.json (step, curves, early-stopping state). The
// data order and the dropout masks are functions of the seed and the step,
// so these two files are all it takes to continue exactly. A checkpoint is
// written to a temporary directory and renamed into place.

var checkpointDTypes = map[dtypes.DType]safetensors.DType{
	dtypes.Float32: safetensors.F32, dtypes.Float64: safetensors.F64, dtypes.Int64: safetensors.I64,
	dtypes.Int32: safetensors.I32, dtypes.BFloat16: safetensors.BF16,
}

func (s *session) saveCheckpoint(dir string, st *trainerState) error {
	fail := func(err error) error { return fmt.Errorf("train: write checkpoint %s: %w", dir, err) }
	var ts []safetensors.Tensor
	for v := range s.ctx.IterVariables() {
		if s.base[v.ScopeAndName()] {
			continue
		}
		d, ok := checkpointDTypes[v.DType()]
		if !ok {
			return fail(fmt.Errorf("variable %s has dtype %s, which checkpoints do not store", v.ScopeAndName(), v.DType()))
		}
		t, err := v.Value()
		if err != nil {
			return fail(err)
		}
		var data []byte
		if err := t.ConstBytes(func(b []byte) { data = append([]byte(nil), b...) }); err != nil {
			return fail(err)
		}
		ts = append(ts, safetensors.Tensor{Name: v.ScopeAndName(), DType: d, Shape: v.Shape().Dimensions, Data: data})
	}
	tmp := dir + ".tmp"
	_ = os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fail(err)
	}
	if err := safetensors.Write(filepath.Join(tmp, "state.safetensors"), ts, nil); err != nil {
		return fail(err)
	}
	b, err := json.MarshalIndent(st, "", " ")
	if err != nil {
		return fail(err)
	}
	if err := atomicfile.Write(filepath.Join(tmp, "trainer.json"), b); err != nil {
		return fail(err)
	}
	old := dir + ".old"
	_ = os.RemoveAll(old)
	if err := os.Rename(dir, old); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fail(err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fail(err)
	}
	_ = os.RemoveAll(old)
	return nil
}

// loadCheckpoint restores dir into the session and st; false when there is none.
func (s *session) loadCheckpoint(dir string, st *trainerState) (bool, error) {
	fail := func(err error) (bool, error) {
		return false, fmt.Errorf("train: resume from %s: %w", dir, err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		if _, err := os.Stat(dir + ".old"); err == nil {
			dir = dir + ".old" // a crash between saveCheckpoint's two renames
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "trainer.json"))
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return fail(err)
	}
	var saved trainerState
	if err := json.Unmarshal(b, &saved); err != nil {
		return fail(err)
	}
	if saved.Fingerprint != st.Fingerprint {
		return fail(errors.New("the checkpoint was made with other settings (data, model or hyperparameters); use a new --out, or the same settings"))
	}
	f, err := safetensors.Open(filepath.Join(dir, "state.safetensors"))
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	for _, name := range f.Names() {
		info, raw, err := f.Raw(name)
		if err != nil {
			return fail(err)
		}
		var dt dtypes.DType
		for k, v := range checkpointDTypes {
			if v == info.DType {
				dt = k
			}
		}
		if dt == dtypes.InvalidDType {
			return fail(fmt.Errorf("tensor %s has dtype %s", name, info.DType))
		}
		t := tensors.FromShape(shapes.Make(dt, info.Shape...))
		if err := t.MutableBytes(func(b []byte) { copy(b, raw) }); err != nil {
			return fail(err)
		}
		scope, vname := mlctx.SplitScope(name)
		if v := s.ctx.GetVariableByScopeAndName(scope, vname); v != nil {
			if !v.Shape().Equal(t.Shape()) {
				return fail(fmt.Errorf("%s is %s in the checkpoint but %s here", name, t.Shape(), v.Shape()))
			}
			if err := v.SetValue(t); err != nil {
				return fail(err)
			}
			continue
		}
		if !strings.HasPrefix(name, "/") {
			return fail(fmt.Errorf("unexpected tensor %q", name))
		}
		s.ctx.InAbsPath(scope).Checked(false).VariableWithValue(vname, t).SetTrainable(false)
	}
	*st = saved
	return true, nil
}

// saveOutput writes the trained adapter (or, with Full, the whole model) to cfg.Out.
func (s *session) saveOutput(cfg Config) (map[string]string, error) {
	if !cfg.Full {
		a, err := lora.FromContext(s.ctx, s.mcfg, cfg.LoRA, cfg.Base)
		if err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if err := a.Save(cfg.Out); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		if err := copyTokenizerFiles(cfg.Base, cfg.Out); err != nil {
			return nil, fmt.Errorf("train: %w", err)
		}
		return map[string]string{"adapter": cfg.Out}, nil
	}
	var ts []safetensors.Tensor
	for _, spec := range s.mcfg.Tensors() {
		i := strings.LastIndexByte(spec.Name, '.')
		scope := "/" + strings.ReplaceAll(spec.Name[:i], ".", "/")
		v := s.ctx.GetVariableByScopeAndName(scope, spec.Name[i+1:])
		if v == nil {
			return nil, fmt.Errorf("train: save model: no variable for %s", spec.Name)
		}
		vals, err := tensors.CopyFlatData[float32](v.MustValue())
		if err != nil {
			return nil, fmt.Errorf("train: save model: %s: %w", spec.Name, err)
		}
		t, err := safetensors.Float32Tensor(spec.Name, safetensors.F32, spec.Shape, vals)
		if err != nil {
			return nil, err
		}
		ts = append(ts, t)
	}
	if err := safetensors.Write(filepath.Join(cfg.Out, "model.safetensors"), ts, map[string]string{"format": "pt"}); err != nil {
		return nil, fmt.Errorf("train: save model: %w", err)
	}
	if err := lora.CopyModelFiles(cfg.Base, cfg.Out); err != nil {
		return nil, fmt.Errorf("train: %w", err)
	}
	return map[string]string{"model": cfg.Out}, nil
}

// copyTokenizerFiles copies the base's tokenizer files beside the adapter,
// as PEFT's save_pretrained with a tokenizer does, so the adapter directory
// alone renders chats the way training did.
func copyTokenizerFiles(from, to string) error {
	for _, n := range []string{"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"} {
		if _, err := os.Stat(filepath.Join(from, n)); err != nil {
			continue
		}
		if err := atomicfile.Copy(filepath.Join(from, n), filepath.Join(to, n)); err != nil {
			return err
		}
	}
	return nil
}
