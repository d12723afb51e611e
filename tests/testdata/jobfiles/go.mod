module jobfiles

go 1.26
