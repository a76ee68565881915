package sdktest

// CheckValidateCase is checkValidateCase for the external tests, which
// drive it with a testing.TB that records failures.
var CheckValidateCase = checkValidateCase
