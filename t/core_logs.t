#!/usr/bin/perl
# Logs: access_log in nginx's default "combined" format, a custom log_format
# with variables, access_log off, escaping of what a client sends; error_log
# level filtering.
use strict;
use warnings;
use Test::More;
use Test::Portico qw(parse_response need_bin wait_for);

need_bin();

my $s = Test::Portico->new;
$s->write_file('html/five.txt', "12345");
$s->conf(<<'CONF');
    default_type text/plain;
    log_format custom '$status|$body_bytes_sent|$request_time|$http_user_agent|$request_id|$uri|$http_x_missing|';
    log_format json_fmt escape=json '{"ua":"$http_user_agent","status":$status}';
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
        location = /id {
            access_log logs/custom.log custom;
            return 200 "$request_id";
        }
        location /custom/ {
            access_log logs/custom.log custom;
            return 200 "custom";
        }
        location /both/ {
            access_log logs/access.log;
            access_log logs/custom.log custom;
            return 200 "both";
        }
        location /json/ {
            access_log logs/json.log json_fmt;
            return 201 "j";
        }
        location /quiet/ {
            access_log off;
            return 200 "quiet";
        }
    }
CONF
$s->start;

# lines of a log file, waited for (bounded) until there are at least $n
sub log_lines {
    my ($file, $n) = @_;
    my $lines = wait_for(3, sub {
        my @l = split /\n/, $s->read_file("logs/$file") // '';
        @l >= $n ? \@l : undef;
    });
    return @{ $lines || [ split /\n/, $s->read_file("logs/$file") // '' ] };
}

my $date = qr{\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\]};

# ---------------------------------------------------------------- combined (the default)
{
    my $r = $s->get('/five.txt?a=1', 'User-Agent' => 'TestAgent/1.0', Referer => 'http://ref.example/p');
    is $r->{status}, 200, 'static file';
    $s->get('/missing.txt');
    my @l = log_lines('access.log', 2);
    is scalar @l, 2, 'two lines in access.log';
    like $l[0], qr{^127\.0\.0\.1 - - $date "GET /five\.txt\?a=1 HTTP/1\.0" 200 5 "http://ref\.example/p" "TestAgent/1\.0"$},
        'combined: address, date, request line, status, body bytes, referer, agent';
    like $l[1], qr{^127\.0\.0\.1 - - $date "GET /missing\.txt HTTP/1\.0" 404 \d+ "-" "-"$},
        'combined: a 404, absent referer and agent are "-"';
}

# ---------------------------------------------------------------- a custom format
{
    my $id_body = $s->get('/id', 'User-Agent' => 'A')->{body};
    like $id_body, qr/^[0-9a-f]{32}$/, '$request_id is 32 hex digits';
    my $before = () = log_lines('access.log', 2);

    $s->get('/custom/x', 'User-Agent' => 'Custom/2');
    $s->get('/custom/y', 'User-Agent' => 'Custom/3');
    my @c = log_lines('custom.log', 3);
    is scalar @c, 3, 'custom.log has the three requests';
    my @id = split /\|/, $c[0], -1;
    is $id[4], $id_body, 'the $request_id a response showed is the one in its log line';
    my @f = split /\|/, $c[1], -1;
    is $f[0], '200', 'custom: $status';
    is $f[1], '6', 'custom: $body_bytes_sent (body "custom")';
    like $f[2], qr/^\d+\.\d{3}$/, 'custom: $request_time in seconds with milliseconds';
    is $f[3], 'Custom/2', 'custom: $http_user_agent';
    like $f[4], qr/^[0-9a-f]{32}$/, 'custom: $request_id';
    is $f[5], '/custom/x', 'custom: $uri';
    is $f[6], '-', 'custom: an empty variable is "-"';
    is $f[7], '', 'custom: literal text after the last variable';
    my ($id2) = (split /\|/, $c[2])[4];
    isnt $f[4], $id2, '$request_id differs between requests';
    my $after = () = log_lines('access.log', $before);
    is $after, $before, 'locations with their own access_log do not write the inherited one';
}

# ---------------------------------------------------------------- two logs in one location
{
    my $n_access = () = log_lines('access.log', 1);
    my $n_custom = () = log_lines('custom.log', 1);
    $s->get('/both/z');
    my @a = log_lines('access.log', $n_access + 1);
    my @c = log_lines('custom.log', $n_custom + 1);
    like $a[-1], qr{"GET /both/z HTTP/1\.0" 200 4 }, 'two access_log lines: combined';
    like $c[-1], qr{^200\|4\|.*\|/both/z\|}, 'two access_log lines: custom';
}

# ---------------------------------------------------------------- access_log off
{
    my $before = $s->access_log;
    my $r = $s->get('/quiet/q');
    is $r->{body}, 'quiet', 'access_log off: answered';
    $s->get('/five.txt');    # a logged request after it, to know writing happened
    my @l = log_lines('access.log', (() = split /\n/, $before) + 1);
    unlike join("\n", @l), qr{/quiet/}, 'access_log off: no line';
    like $l[-1], qr{"GET /five\.txt HTTP/1\.0" 200}, 'the next request is logged';
}

# ---------------------------------------------------------------- escaping
{
    my $n = () = log_lines('access.log', 1);
    $s->get('/five.txt', 'User-Agent' => 'evil" "injected \\ agent', Referer => "caf\xc3\xa9");
    my @l = log_lines('access.log', $n + 1);
    like $l[-1], qr{ "caf\\xC3\\xA9" "evil\\x22 \\x22injected \\x5C agent"$},
        'combined escapes ", \\ and bytes outside ASCII as \\xHH (nginx)';
    my ($fields) = $l[-1] =~ /\] (.*)$/;
    my $quotes = () = $fields =~ /"/g;
    is $quotes, 6, 'exactly three quoted fields: a value cannot add one';

    $s->get('/json/a', 'User-Agent' => 'say "hi" \\ there');
    my @j = log_lines('json.log', 1);
    is $j[-1], '{"ua":"say \"hi\" \\\\ there","status":201}', 'escape=json: JSON string escaping';
}

$s->stop;

# $request_id is unique across processes: every worker (and every start) has
# its own random sequence, not one fixed seed that forked workers share
{
    my %seen;
    for my $start (1 .. 3) {
        ok $s->start, "start $start";
        my $id = $s->get('/id')->{body};
        like $id, qr/^[0-9a-f]{32}$/, "start $start: a request id";
        ok !$seen{$id}++, "start $start: its first request id was not seen before";
        $s->stop;
    }
}

# ---------------------------------------------------------------- error_log levels

# The same events at three levels: "portico started" is a notice, an
# invalid request is an info, a missing file an error.
for my $level (qw(info notice error)) {
    my $e = Test::Portico->new(log_level => $level);
    $e->conf(<<'CONF');
    server {
        listen 127.0.0.1:%%PORT%%;
        root %%ROOT%%/html;
    }
CONF
    $e->start;
    $e->http("GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n");   # refused: logged at info
    is $e->get('/nothing-here.txt')->{status}, 404, "error_log $level: 404";
    $e->stop;
    my $log = $e->error_log;
    my %want = (
        info   => { info => 1, notice => 1, error => 1 },
        notice => { info => 0, notice => 1, error => 1 },
        error  => { info => 0, notice => 0, error => 1 },
    );
    my %has = (
        info   => scalar($log =~ /\[info\] \d+#0: \*\d+ client sent invalid request/),
        notice => scalar($log =~ /\[notice\] \d+#0: portico started/),
        error  => scalar($log =~ /\[error\] \d+#0: \*\d+ open\(\) "[^"]*nothing-here\.txt" failed \(2: No such file or directory\)/),
    );
    for my $k (qw(info notice error)) {
        is !!$has{$k}, !!$want{$level}{$k},
            "error_log $level: $k message " . ($want{$level}{$k} ? 'written' : 'filtered out');
    }
    like $log, qr/nothing-here\.txt" failed \(2: No such file or directory\), client: 127\.0\.0\.1, request: "GET \/nothing-here\.txt HTTP\/1\.0", host: "localhost"$/m,
        "error_log $level: a module's message carries the request context (nginx)";
    unlike $log, qr/\[debug\]/, "error_log $level: no debug lines";
    if ($level eq 'error') {
        unlike $log, qr/\[(warn|notice|info)\]/, 'error_log error: nothing below error at all';
    }
}

done_testing;
