<?php
// A partner's PHP client: ext/soap's SoapClient in WSDL mode, reading only the served WSDL.
// Driven by tests/e2e/test_interop_php.py.
//
// Usage: php soap_client.php WSDL_URL OPERATION JSON_PARAMETERS [AUTH_TOKEN]
//
// Calls OPERATION with the JSON object as its one (wrapper) parameter, sending the AuthToken
// header when a token is given, and prints one JSON object: {"functions": [...], and either
// "result": ... or "fault": {"faultcode", "faultstring", "detail"}}. Every value is printed
// as SoapClient decoded it (xs:decimal arrives as a string), so JSON shows its PHP type.

declare(strict_types=1);

const COMMON_NS = 'http://p2p.hry.com/facade/common';

if ($argc < 4 || $argc > 5) {
    fwrite(STDERR, "usage: php soap_client.php WSDL_URL OPERATION JSON_PARAMETERS [AUTH_TOKEN]\n");
    exit(2);
}
[, $wsdl, $operation, $json] = $argv;
$token = $argv[4] ?? null;

$parameters = json_decode($json, true, 16, JSON_THROW_ON_ERROR);
$client = new SoapClient($wsdl, [
    'soap_version' => SOAP_1_1,
    'cache_wsdl' => WSDL_CACHE_NONE,
    'exceptions' => true,
    'trace' => true,
    'features' => SOAP_SINGLE_ELEMENT_ARRAYS,
]);

$headers = [];
if ($token !== null) {
    $headers[] = new SoapHeader(COMMON_NS, 'AuthToken', ['token' => $token]);
}

$output = ['functions' => $client->__getFunctions()];
try {
    $output['result'] = $client->__soapCall($operation, [$parameters], null, $headers);
} catch (SoapFault $fault) {
    $output['fault'] = [
        'faultcode' => $fault->faultcode,
        'faultstring' => $fault->faultstring,
        'detail' => $fault->detail ?? null,
    ];
}
$output['request'] = $client->__getLastRequest();
echo json_encode($output, JSON_THROW_ON_ERROR | JSON_PRESERVE_ZERO_FRACTION | JSON_UNESCAPED_SLASHES), "\n";
