module github.com/kitefix/kitefix/integration

go 1.26

replace github.com/kitefix/kitefix => ../
