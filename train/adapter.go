package train

import (
	"github.com/foundryhq/foundry/model/nn"
	"github.com/foundryhq/foundry/train/lora"
)

// The adapter itself lives in package lora (which the engine can import
// without the training loop); these re-export it for code that trains.

// LoRA is lora.LoRA: rank, alpha, dropout, targets, rsLoRA.
type LoRA = lora.LoRA

// Adapter is lora.Adapter: a LoRA adapter's matrices on the host.
type Adapter = lora.Adapter

// PEFT file names.
const (
	AdapterConfigFile  = lora.AdapterConfigFile
	AdapterWeightsFile = lora.AdapterWeightsFile
)

// Merge is lora.Merge: base + adapter written as a plain model.
func Merge(baseDir, adapterDir, outDir string) error { return lora.Merge(baseDir, adapterDir, outDir) }

// ParseTargets is lora.ParseTargets.
func ParseTargets(s string) ([]nn.Projection, error) { return lora.ParseTargets(s) }
