<?php
header('Content-Type: text/plain');
echo "other page uri=", $_SERVER['REQUEST_URI'], " script=", $_SERVER['SCRIPT_NAME'],
    " query=", $_SERVER['QUERY_STRING'], "\n";
