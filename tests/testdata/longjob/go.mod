module longjob

go 1.26
