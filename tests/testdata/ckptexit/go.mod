module ckptexit

go 1.26
