package wasi

import (
	"context"

	"github.com/tetratelabs/wazero/api"
)

var pathFuncs = []hostFunc{
	{"path_create_directory", []api.ValueType{i32, i32, i32}, pathNosys},
	{"path_filestat_get", []api.ValueType{i32, i32, i32, i32, i32}, pathNosys},
	{"path_filestat_set_times", []api.ValueType{i32, i32, i32, i32, i64, i64, i32}, pathNosys},
	{"path_link", []api.ValueType{i32, i32, i32, i32, i32, i32, i32}, pathNosys},
	{"path_open", []api.ValueType{i32, i32, i32, i32, i32, i64, i64, i32, i32}, pathNosys},
	{"path_readlink", []api.ValueType{i32, i32, i32, i32, i32, i32}, pathNosys},
	{"path_remove_directory", []api.ValueType{i32, i32, i32}, pathNosys},
	{"path_rename", []api.ValueType{i32, i32, i32, i32, i32, i32}, pathNosys},
	{"path_symlink", []api.ValueType{i32, i32, i32, i32, i32}, pathNosys},
	{"path_unlink_file", []api.ValueType{i32, i32, i32}, pathNosys},
}

func pathNosys(*System, context.Context, api.Module, []uint64) errno {
	return errnoNosys
}
