<?php
// A partner's PHP client: ext/soap's SoapClient in WSDL mode, reading only the served WSDL.
// Driven by tests/e2e/test_interop_php.py.
//
// Usage: php soap_client.php WSDL_URL SOAP_VERSION OPERATION JSON_PARAMETERS [AUTH_TOKEN]
//
// Speaks SOAP_VERSION (1.1 or 1.2: SoapClient's soap_version, which picks the media type and
// the envelope; the address is the WSDL's). Calls OPERATION with the JSON object as its one
// (wrapper) parameter, sending the AuthToken header when a token is given, and prints one
// JSON object: {"functions": [...], either "result": ... or "fault": {"faultcode",
// "faultstring", "detail"}, and the "request" and "requestHeaders" it sent}. Every value is
// printed as SoapClient decoded it (xs:decimal arrives as a string), so JSON shows its PHP
// type.

declare(strict_types=1);

const COMMON_NS = 'http://p2p.hry.com/facade/common';
const VERSIONS = ['1.1' => SOAP_1_1, '1.2' => SOAP_1_2];

if ($argc < 5 || $argc > 6 || !isset(VERSIONS[$argv[2]])) {
    fwrite(STDERR, "usage: php soap_client.php WSDL_URL 1.1|1.2 OPERATION JSON_PARAMETERS [AUTH_TOKEN]\n");
    exit(2);
}
[, $wsdl, $version, $operation, $json] = $argv;
$token = $argv[5] ?? null;

$parameters = json_decode($json, true, 16, JSON_THROW_ON_ERROR);
$client = new SoapClient($wsdl, [
    'soap_version' => VERSIONS[$version],
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
$output['requestHeaders'] = $client->__getLastRequestHeaders();
echo json_encode($output, JSON_THROW_ON_ERROR | JSON_PRESERVE_ZERO_FRACTION | JSON_UNESCAPED_SLASHES), "\n";
