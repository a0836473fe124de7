/*
 * inettest - AF_INET probe for kbox's --net=user (docs/network.md).
 *
 * Usage:
 *   inettest names             two sockets of the guest talk over its own
 *                              loopback (TCP and UDP, fixed ports and port
 *                              0) and print what getsockname, getpeername,
 *                              accept, recvfrom and recvmsg report; then
 *                              the refusals (outside addresses, IPv6,
 *                              netlink, a closed guest port)
 *   inettest connect ADDR PORT connect, print both names, send "hi\n",
 *                              print the reply line
 *   inettest resolve NAME      getaddrinfo(NAME, AF_INET): the addresses
 *   inettest rtt ADDR PORT N   N one-byte round trips over TCP (ns/op)
 *   inettest send ADDR PORT MB write MB MiB, shut down, wait for the
 *                              peer's close; print MB/s
 *
 * Every step prints one line, "<step>: ok [value]" or "<step>: err ENAME".
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

static const char *ename(int e)
{
	switch (e) {
	case EACCES: return "EACCES";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case EADDRINUSE: return "EADDRINUSE";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EINVAL: return "EINVAL";
	case ENOTCONN: return "ENOTCONN";
	case EINPROGRESS: return "EINPROGRESS";
	case ENETUNREACH: return "ENETUNREACH";
	case EPERM: return "EPERM";
	}
	static char buf[32];
	snprintf(buf, sizeof buf, "E%d", e);
	return buf;
}

static struct sockaddr_in mkaddr(const char *a, int port)
{
	struct sockaddr_in s;
	memset(&s, 0, sizeof s);
	s.sin_family = AF_INET;
	s.sin_port = htons(port);
	inet_pton(AF_INET, a, &s.sin_addr);
	return s;
}

static char *fmt(const struct sockaddr_in *s)
{
	static char bufs[4][64];
	static int n;
	char *b = bufs[n++ % 4];
	char a[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &s->sin_addr, a, sizeof a);
	snprintf(b, 64, "%s:%d", a, ntohs(s->sin_port));
	return b;
}

static int rc(const char *step, int r)
{
	if (r < 0)
		printf("%s: err %s\n", step, ename(errno));
	else
		printf("%s: ok\n", step);
	return r;
}

static struct sockaddr_in name(int fd, int peer)
{
	struct sockaddr_in s;
	socklen_t l = sizeof s;
	memset(&s, 0, sizeof s);
	if ((peer ? getpeername(fd, (struct sockaddr *)&s, &l) : getsockname(fd, (struct sockaddr *)&s, &l)) < 0)
		s.sin_port = 0xffff;
	return s;
}

/* hostBound says where the host's /proc/net/tcp has a listener on port
 * (the guest's /proc under -S is the host's). */
static const char *hostBound(int port)
{
	FILE *f = fopen("/proc/net/tcp", "r");
	char line[512], want[32];
	const char *r = "none";
	if (!f)
		return "unknown";
	snprintf(want, sizeof want, ":%04X ", port);
	while (fgets(line, sizeof line, f)) {
		char local[64], remote[64];
		unsigned st;
		if (sscanf(line, "%*s %63s %63s %x", local, remote, &st) != 3 || st != 0x0a)
			continue;
		strcat(local, " ");
		if (strstr(local, want))
			r = strncmp(local, "0100007F:", 9) == 0 ? "127.0.0.1" : "elsewhere";
	}
	fclose(f);
	return r;
}

static int cmd_names(void)
{
	struct sockaddr_in a, b, from;
	socklen_t fl;
	char buf[16];
	/* TCP on fixed port 7000, bound to the wildcard. */
	int l = socket(AF_INET, SOCK_STREAM, 0);
	int one = 1;
	setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	a = mkaddr("0.0.0.0", 7000);
	rc("tcp bind 0.0.0.0:7000", bind(l, (struct sockaddr *)&a, sizeof a));
	listen(l, 4);
	printf("tcp listener name: %s\n", fmt((a = name(l, 0), &a)));
	int c = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("127.0.0.1", 7000);
	rc("tcp connect 127.0.0.1:7000", connect(c, (struct sockaddr *)&a, sizeof a));
	struct sockaddr_in cn = name(c, 0);
	printf("tcp client name: %s\n", cn.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "127.0.0.1" : fmt(&cn));
	printf("tcp client peer: %s\n", fmt((a = name(c, 1), &a)));
	fl = sizeof from;
	int s = accept(l, (struct sockaddr *)&from, &fl);
	printf("tcp accept from: %s %s\n", inet_ntoa(from.sin_addr), from.sin_port == cn.sin_port ? "client-port" : "other-port");
	printf("tcp accepted name: %s\n", fmt((a = name(s, 0), &a)));
	b = name(s, 1);
	printf("tcp accepted peer: %s %s\n", inet_ntoa(b.sin_addr), b.sin_port == cn.sin_port ? "client-port" : "other-port");
	write(c, "x", 1);
	printf("tcp data: %s\n", read(s, buf, 1) == 1 && buf[0] == 'x' ? "ok" : "lost");
	close(c);
	close(s);
	int l2 = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("10.0.2.15", 7000);
	rc("tcp bind 10.0.2.15:7000 again", bind(l2, (struct sockaddr *)&a, sizeof a));
	close(l2);
	l2 = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("192.0.2.1", 7002);
	rc("tcp bind 192.0.2.1:7002", bind(l2, (struct sockaddr *)&a, sizeof a));
	close(l);
	/* After the close the port is free again, and nothing listens. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("127.0.0.1", 7000);
	rc("tcp connect closed 127.0.0.1:7000", connect(c, (struct sockaddr *)&a, sizeof a));
	close(c);
	/* Port 0: the kernel's choice, reported and reachable. */
	a = mkaddr("0.0.0.0", 0);
	rc("tcp bind 0.0.0.0:0", bind(l2, (struct sockaddr *)&a, sizeof a));
	listen(l2, 4);
	struct sockaddr_in e = name(l2, 0);
	printf("tcp port 0 name: %s %s\n", inet_ntoa(e.sin_addr), e.sin_port ? "nonzero" : "zero");
	c = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("10.0.2.15", ntohs(e.sin_port));
	rc("tcp connect 10.0.2.15:port0", connect(c, (struct sockaddr *)&a, sizeof a));
	printf("tcp port 0 client name: %s\n", inet_ntoa((a = name(c, 0), a).sin_addr));
	printf("tcp port 0 client peer: %s\n", (a = name(c, 1), a).sin_port == e.sin_port ? "ok" : fmt(&a));
	close(c);
	close(l2);
	/* listen without bind: bound inside the guest's network first. */
	l2 = socket(AF_INET, SOCK_STREAM, 0);
	rc("tcp listen unbound", listen(l2, 4));
	e = name(l2, 0);
	printf("tcp listen unbound name: %s %s\n", inet_ntoa(e.sin_addr), e.sin_port ? "nonzero" : "zero");
	printf("tcp listen unbound host: %s\n", hostBound(ntohs(e.sin_port)));
	c = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("127.0.0.1", ntohs(e.sin_port));
	rc("tcp connect unbound listener", connect(c, (struct sockaddr *)&a, sizeof a));
	close(c);
	close(l2);
	/* UDP on 127.0.0.1:7001; an unbound sender. */
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	a = mkaddr("127.0.0.1", 7001);
	rc("udp bind 127.0.0.1:7001", bind(u, (struct sockaddr *)&a, sizeof a));
	int v = socket(AF_INET, SOCK_DGRAM, 0);
	rc("udp sendto 127.0.0.1:7001", sendto(v, "ping", 4, 0, (struct sockaddr *)&a, sizeof a));
	struct sockaddr_in vn = name(v, 0);
	fl = sizeof from;
	memset(buf, 0, sizeof buf);
	recvfrom(u, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
	printf("udp recvfrom: %s from %s %s\n", buf, inet_ntoa(from.sin_addr), from.sin_port == vn.sin_port ? "sender-port" : "other-port");
	rc("udp reply", sendto(u, "pong", 4, 0, (struct sockaddr *)&from, fl));
	struct iovec iov = { buf, sizeof buf };
	struct msghdr mh;
	memset(&mh, 0, sizeof mh);
	memset(buf, 0, sizeof buf);
	mh.msg_name = &from;
	mh.msg_namelen = sizeof from;
	mh.msg_iov = &iov;
	mh.msg_iovlen = 1;
	recvmsg(v, &mh, 0);
	printf("udp recvmsg: %s from %s\n", buf, fmt(&from));
	/* Refusals. */
	c = socket(AF_INET, SOCK_STREAM, 0);
	a = mkaddr("192.0.2.1", 80);
	rc("tcp connect 192.0.2.1:80", connect(c, (struct sockaddr *)&a, sizeof a));
	close(c);
	c = socket(AF_INET, SOCK_STREAM, 0);
	rc("tcp fastopen 192.0.2.1:80", sendto(c, "x", 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a));
	close(c);
	a = mkaddr("192.0.2.1", 53);
	rc("udp sendto 192.0.2.1:53", sendto(v, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
	rc("udp connect 192.0.2.1:53", connect(v, (struct sockaddr *)&a, sizeof a));
	a = mkaddr("10.0.2.2", 9);
	rc("udp sendto 10.0.2.2:9", sendto(v, "x", 1, 0, (struct sockaddr *)&a, sizeof a));
	rc("socket AF_INET6", socket(AF_INET6, SOCK_STREAM, 0));
	rc("socket AF_NETLINK", socket(AF_NETLINK, SOCK_RAW, 0));
	return 0;
}

static int dial(const char *addr, int port)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = mkaddr(addr, port);
	if (connect(c, (struct sockaddr *)&a, sizeof a) < 0) {
		printf("connect: err %s\n", ename(errno));
		return -1;
	}
	return c;
}

static int cmd_connect(const char *addr, int port)
{
	int c = dial(addr, port);
	if (c < 0)
		return 0;
	struct sockaddr_in a = name(c, 0), b = name(c, 1);
	printf("connect: ok name %s peer %s\n", inet_ntoa(a.sin_addr), fmt(&b));
	write(c, "hi\n", 3);
	char buf[256];
	ssize_t n = read(c, buf, sizeof buf - 1);
	buf[n > 0 ? n : 0] = 0;
	printf("reply: %s", buf);
	return 0;
}

static int cmd_resolve(const char *host)
{
	struct addrinfo hints, *res, *p;
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_STREAM;
	int r = getaddrinfo(host, NULL, &hints, &res);
	if (r != 0) {
		printf("resolve: err %s\n", gai_strerror(r));
		return 0;
	}
	for (p = res; p; p = p->ai_next)
		printf("resolve: ok %s\n", inet_ntoa(((struct sockaddr_in *)p->ai_addr)->sin_addr));
	return 0;
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmd_rtt(const char *addr, int port, int n)
{
	int c = dial(addr, port), one = 1;
	if (c < 0)
		return 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	char b = 'x';
	double t0 = now();
	for (int i = 0; i < n; i++)
		if (write(c, &b, 1) != 1 || read(c, &b, 1) != 1)
			return 1;
	printf("rtt: %.0f ns/op\n", (now() - t0) * 1e9 / n);
	return 0;
}

static int cmd_send(const char *addr, int port, int mb)
{
	static char buf[1 << 16];
	int c = dial(addr, port);
	if (c < 0)
		return 1;
	double t0 = now();
	long long left = (long long)mb << 20;
	while (left > 0) {
		ssize_t w = write(c, buf, left < (long long)sizeof buf ? left : (long long)sizeof buf);
		if (w <= 0)
			return 1;
		left -= w;
	}
	shutdown(c, SHUT_WR);
	read(c, buf, 1);
	printf("send: %.1f MB/s\n", mb / (now() - t0));
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 2 && strcmp(argv[1], "names") == 0)
		return cmd_names();
	if (argc == 4 && strcmp(argv[1], "connect") == 0)
		return cmd_connect(argv[2], atoi(argv[3]));
	if (argc == 3 && strcmp(argv[1], "resolve") == 0)
		return cmd_resolve(argv[2]);
	if (argc == 5 && strcmp(argv[1], "rtt") == 0)
		return cmd_rtt(argv[2], atoi(argv[3]), atoi(argv[4]));
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return cmd_send(argv[2], atoi(argv[3]), atoi(argv[4]));
	fputs("usage: inettest names | connect ADDR PORT | resolve NAME | rtt ADDR PORT N | send ADDR PORT MB\n", stderr);
	return 2;
}
