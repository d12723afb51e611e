module gowait

go 1.26
