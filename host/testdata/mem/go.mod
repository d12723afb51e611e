module mem

go 1.26
