module fdtable

go 1.26
