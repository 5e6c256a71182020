// JDBC checks of the client compatibility harness: DatabaseMetaData, a
// prepared statement reused until the driver switches to binary transfer,
// update counts, {call}, fetch size with a cursor, and cancel.
//
// Connection from the PG* environment variables; prints one
// "ok jdbc ..." / "not ok jdbc ... -- why" / "xfail jdbc ..." line per check.

import java.math.BigDecimal;
import java.sql.*;
import java.time.LocalDate;
import java.time.OffsetDateTime;
import java.time.ZoneOffset;
import java.util.*;

public class Checks {
    interface Body {
        void run(Connection c) throws Exception;
    }

    static final boolean WRITES = "1".equals(System.getenv("PRODUCTIVE_PG_WRITES"));

    static Connection connect(String extra) throws SQLException {
        String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT")
                + "/" + System.getenv("PGDATABASE") + extra;
        return DriverManager.getConnection(url, System.getenv("PGUSER"), System.getenv("PGPASSWORD"));
    }

    static void check(Connection c, String name, Body body) {
        try {
            body.run(c);
            System.out.println("ok jdbc " + name);
        } catch (Throwable e) {
            System.out.println("not ok jdbc " + name + " -- " + oneLine(e));
        }
        reset(c);
    }

    static void writeCheck(Connection c, String name, Body body) {
        try {
            body.run(c);
            System.out.println("ok jdbc " + name);
        } catch (Throwable e) {
            String why = oneLine(e);
            if (WRITES) {
                System.out.println("not ok jdbc " + name + " -- " + why);
            } else {
                System.out.println("xfail jdbc " + name + " -- " + why
                        + " (this server has no write path)");
            }
        }
        reset(c);
    }

    static void reset(Connection c) {
        try {
            if (!c.getAutoCommit()) {
                c.rollback();
                c.setAutoCommit(true);
            }
        } catch (SQLException ignored) {
            // A broken connection shows up in the next check.
        }
    }

    static String oneLine(Throwable e) {
        String m = e.getClass().getSimpleName() + ": " + e.getMessage();
        m = m.replace('\n', ' ');
        return m.length() > 300 ? m.substring(0, 300) : m;
    }

    static void expect(boolean cond, String what) {
        if (!cond) {
            throw new AssertionError(what);
        }
    }

    /** The rows of a result set as column-label → value maps. */
    static List<Map<String, Object>> rows(ResultSet rs) throws SQLException {
        List<Map<String, Object>> out = new ArrayList<>();
        ResultSetMetaData md = rs.getMetaData();
        while (rs.next()) {
            Map<String, Object> row = new LinkedHashMap<>();
            for (int i = 1; i <= md.getColumnCount(); i++) {
                row.put(md.getColumnLabel(i).toLowerCase(), rs.getObject(i));
            }
            out.add(row);
        }
        rs.close();
        return out;
    }

    static boolean any(List<Map<String, Object>> rows, String col, Object value) {
        for (Map<String, Object> r : rows) {
            if (String.valueOf(r.get(col)).equals(String.valueOf(value))) {
                return true;
            }
        }
        return false;
    }

    public static void main(String[] args) throws Exception {
        Connection c = connect("");
        DatabaseMetaData md = c.getMetaData();

        check(c, "connect and server version", x -> {
            expect(md.getDatabaseProductName().equals("PostgreSQL"), md.getDatabaseProductName());
            expect(md.getDatabaseMajorVersion() == 15, "major " + md.getDatabaseMajorVersion());
        });
        check(c, "getCatalogs", x -> {
            expect(any(rows(md.getCatalogs()), "table_cat", "productive"), "no productive");
        });
        check(c, "getSchemas", x -> {
            List<Map<String, Object>> r = rows(md.getSchemas());
            expect(any(r, "table_schem", "public"), "no public: " + r);
        });
        check(c, "getTables", x -> {
            List<Map<String, Object>> r = rows(md.getTables(null, "public", "%", new String[] {"TABLE"}));
            expect(any(r, "table_name", "tasks"), "no tasks");
            expect(any(r, "table_name", "projects"), "no projects");
        });
        check(c, "getTables remarks", x -> {
            List<Map<String, Object>> r = rows(md.getTables(null, "public", "tasks", null));
            expect(r.size() == 1, "rows " + r.size());
            expect(r.get(0).get("remarks") != null, "no remarks");
        });
        check(c, "getColumns", x -> {
            List<Map<String, Object>> r = rows(md.getColumns(null, "public", "tasks", "%"));
            Map<String, Map<String, Object>> byName = new HashMap<>();
            for (Map<String, Object> row : r) {
                byName.put((String) row.get("column_name"), row);
            }
            expect(byName.containsKey("id") && byName.containsKey("project_id"), "missing columns");
            expect(((Number) byName.get("id").get("data_type")).intValue() == Types.BIGINT,
                    "id type " + byName.get("id").get("type_name"));
            expect("timestamptz".equals(byName.get("created_at").get("type_name")),
                    "created_at " + byName.get("created_at").get("type_name"));
            expect("date".equals(byName.get("due_date").get("type_name")), "due_date");
            expect("NO".equals(byName.get("id").get("is_nullable")), "id nullable");
        });
        check(c, "getPrimaryKeys", x -> {
            List<Map<String, Object>> r = rows(md.getPrimaryKeys(null, "public", "tasks"));
            expect(r.size() == 1 && "id".equals(r.get(0).get("column_name")), "pk " + r);
        });
        check(c, "getImportedKeys", x -> {
            List<Map<String, Object>> r = rows(md.getImportedKeys(null, "public", "tasks"));
            boolean found = false;
            for (Map<String, Object> row : r) {
                found |= "project_id".equals(row.get("fkcolumn_name"))
                        && "projects".equals(row.get("pktable_name"))
                        && "id".equals(row.get("pkcolumn_name"));
            }
            expect(found, "no tasks.project_id -> projects.id in " + r.size() + " rows");
        });
        check(c, "getExportedKeys", x -> {
            List<Map<String, Object>> r = rows(md.getExportedKeys(null, "public", "projects"));
            expect(any(r, "fktable_name", "tasks"), "no tasks among " + r.size());
        });
        check(c, "getIndexInfo", x -> {
            List<Map<String, Object>> r = rows(md.getIndexInfo(null, "public", "tasks", false, true));
            expect(any(r, "column_name", "id"), "no index on id: " + r);
        });
        check(c, "getTypeInfo", x -> {
            List<Map<String, Object>> r = rows(md.getTypeInfo());
            expect(any(r, "type_name", "int8") && any(r, "type_name", "timestamptz"), "types");
        });
        check(c, "getProcedures", x -> expect(any(rows(md.getProcedures(null, "public", "%")),
                "procedure_name", "ArchiveProject"), "ArchiveProject not listed"));
        check(c, "getFunctions", x -> expect(any(rows(md.getFunctions(null, "public", "%")),
                "function_name", "archive_project"), "archive_project not listed"));

        check(c, "plain query values", x -> {
            try (Statement s = x.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) AS n, min(id) AS first FROM tasks")) {
                expect(rs.next(), "no row");
                expect(rs.getLong("n") > 0, "count");
                expect(rs.getMetaData().getColumnType(1) == Types.BIGINT, "count type");
            }
        });

        // pgjdbc switches to a server-prepared statement and binary transfer
        // after prepareThreshold (5) executions; run well past it.
        check(c, "prepared statement reused (binary)", x -> {
            long expected;
            try (Statement s = x.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) FROM tasks WHERE id >= 1")) {
                rs.next();
                expected = rs.getLong(1);
            }
            try (PreparedStatement ps = x.prepareStatement(
                    "SELECT count(*) AS n, max(created_at) AS latest, min(due_date) AS due, "
                            + "CAST(? AS numeric) AS amount FROM tasks "
                            + "WHERE id >= ? AND created_at < ? AND (due_date IS NULL OR due_date > ?)")) {
                for (int i = 0; i < 8; i++) {
                    ps.setBigDecimal(1, new BigDecimal("12.50"));
                    ps.setInt(2, 1);
                    ps.setObject(3, OffsetDateTime.of(2100, 1, 1, 0, 0, 0, 0, ZoneOffset.UTC));
                    ps.setObject(4, LocalDate.of(1900, 1, 1));
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next(), "no row in round " + i);
                        expect(rs.getLong("n") == expected, "round " + i + ": " + rs.getLong("n"));
                        expect(new BigDecimal("12.50").compareTo(rs.getBigDecimal("amount")) == 0,
                                "amount " + rs.getBigDecimal("amount"));
                        expect(rs.getObject("latest", OffsetDateTime.class) != null, "latest");
                    }
                }
            }
        });
        check(c, "prepared statement with text parameter", x -> {
            String title;
            long id;
            try (Statement s = x.createStatement();
                    ResultSet rs = s.executeQuery("SELECT id, title FROM tasks ORDER BY id LIMIT 1")) {
                rs.next();
                id = rs.getLong(1);
                title = rs.getString(2);
            }
            try (PreparedStatement ps = x.prepareStatement("SELECT id FROM tasks WHERE title = ? AND id = ?")) {
                for (int i = 0; i < 7; i++) {
                    ps.setString(1, title);
                    ps.setLong(2, id);
                    try (ResultSet rs = ps.executeQuery()) {
                        expect(rs.next() && rs.getLong(1) == id, "round " + i);
                    }
                }
            }
        });
        check(c, "setFetchSize with a cursor in a transaction", x -> {
            x.setAutoCommit(false);
            long total;
            try (Statement s = x.createStatement();
                    ResultSet rs = s.executeQuery("SELECT count(*) FROM tasks")) {
                rs.next();
                total = rs.getLong(1);
            }
            try (Statement s = x.createStatement()) {
                s.setFetchSize(7);
                long n = 0;
                try (ResultSet rs = s.executeQuery("SELECT id FROM tasks")) {
                    while (rs.next()) {
                        n++;
                    }
                }
                expect(n == total, n + " rows fetched of " + total);
            }
            x.commit();
        });
        check(c, "cancel", x -> {
            try (Statement s = x.createStatement()) {
                Thread t = new Thread(() -> {
                    try {
                        Thread.sleep(300);
                        s.cancel();
                    } catch (Exception ignored) {
                        // The query then finishes and the check below fails.
                    }
                });
                t.start();
                try {
                    s.executeQuery("SELECT count(*) FROM tasks a, tasks b, tasks c");
                    throw new AssertionError("query was not cancelled");
                } catch (SQLException e) {
                    expect("57014".equals(e.getSQLState()), "sqlstate " + e.getSQLState());
                }
                t.join();
            }
            try (Statement s = x.createStatement(); ResultSet rs = s.executeQuery("SELECT 1")) {
                expect(rs.next(), "connection unusable after cancel");
            }
        });
        check(c, "error leaves the connection usable", x -> {
            try (Statement s = x.createStatement()) {
                try {
                    s.executeQuery("SELECT nosuch FROM tasks");
                    throw new AssertionError("no error");
                } catch (SQLException e) {
                    expect("42703".equals(e.getSQLState()), "sqlstate " + e.getSQLState());
                }
                try (ResultSet rs = s.executeQuery("SELECT 2")) {
                    expect(rs.next() && rs.getInt(1) == 2, "after error");
                }
            }
        });

        writeCheck(c, "executeUpdate count", x -> {
            try (PreparedStatement ps = x.prepareStatement("UPDATE tasks SET title = title WHERE id = ?")) {
                ps.setLong(1, -1);
                int n = ps.executeUpdate();
                expect(n == 0, "count " + n);
            }
            long id;
            try (Statement s = x.createStatement();
                    ResultSet rs = s.executeQuery("SELECT min(id) FROM tasks")) {
                rs.next();
                id = rs.getLong(1);
            }
            try (PreparedStatement ps = x.prepareStatement("UPDATE tasks SET title = title WHERE id = ?")) {
                ps.setLong(1, id);
                int n = ps.executeUpdate();
                expect(n == 1, "count " + n);
            }
        });
        // {call} reaches the procedure in both of pgjdbc's modes: the default
        // turns it into SELECT * FROM f(?), callIfNoReturn into CALL f(?).
        // An unknown project id must come back as the procedure's own
        // "no such record" (P0002), not as a missing procedure (42883).
        Connection calls = connect("?escapeSyntaxCallMode=callIfNoReturn");
        for (Connection x0 : new Connection[] {c, calls}) {
            String mode = x0 == c ? "default" : "callIfNoReturn";
            writeCheck(x0, "{call} " + mode, x -> {
                List<Map<String, Object>> listed = rows(x.getMetaData().getProcedures(null, "public", "%"));
                expect(any(listed, "procedure_name", "ArchiveProject"), "ArchiveProject not listed");
                try (CallableStatement cs = x.prepareCall("{call ArchiveProject(?)}")) {
                    cs.setLong(1, 987654321L);
                    cs.execute();
                    throw new AssertionError("an unknown project was archived");
                } catch (SQLException e) {
                    expect("P0002".equals(e.getSQLState()), e.getSQLState() + " " + e.getMessage());
                }
            });
        }
        calls.close();
        c.close();
    }
}
