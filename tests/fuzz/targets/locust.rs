//! The locustfile translator (and `locust.conf`), from bytes as the service reads them.

use keptn_native::loadtest::locust::{
    LocustConf, parse_conf, parse_locustfile, source_text, to_workload,
};

pub const SEEDS: &[&[u8]] = &[
    include_bytes!("../../../assets/tutorial/basic.py"),
    include_bytes!("../../../assets/tutorial/locust.conf"),
    b"# -*- coding: utf-8 -*-\nfrom locust import FastHttpUser, task, between\n\n\nclass Shopper(FastHttpUser):\n    \"\"\"Buys things.\"\"\"\n    host = \"http://carts.sockshop-staging:80\"\n    wait_time = between(0.5, 2)\n\n    def on_start(self):\n        pass\n\n    @task(3)\n    def browse(self):\n        self.client.get(\"/catalogue?size=5\", name=\"catalogue\", headers={\"Accept\": \"application/json\"})\n\n    @task\n    def buy(self):\n        self.client.post(\"/orders\", json={\"items\": [1, 2, {\"id\": \"x\", \"n\": 2.5}], \"ok\": True, \"note\": None})\n        self.client.put(\"/cart\", data={\"a\": \"b c\", \"n\": 1})\n",
];

pub const DICTIONARY: &[&str] = &[
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    "'",
    "\"",
    "\"\"\"",
    "\\",
    "\r",
    "\u{c}",
    "\t",
    "\u{feff}",
    "# -*- coding: latin-1 -*-\n",
    "# coding=cp1252\n",
    "@task(3)",
    "@task()",
    "self.client.get(",
    "json=",
    "data=",
    "headers=",
    "name=",
    "r'",
    "f'",
    "b'",
    "True",
    "None",
    "1e400",
    "0x10",
    "-",
    ",",
    ":",
    "=",
    "\n    ",
    "    ",
    "class U(HttpUser):",
    "def x(self):",
    "wait_time = between(1, 2)",
    "\u{1b}[2J",
    "\u{0}",
    "\n\n",
    "# ",
];

pub fn check(bytes: &[u8]) -> Result<(), String> {
    let file = "locust/locustfile.py";
    let text = match source_text(file, bytes) {
        Ok(t) => t,
        Err(e) => {
            if e.line == 0 {
                return Err(format!("refusal without a line: {e}"));
            }
            return super::printable("encoding refusal", &e.to_string());
        }
    };
    match parse_locustfile(file, &text) {
        Ok(lf) => {
            let _ = to_workload(&LocustConf::default(), &lf);
        }
        Err(e) => {
            if e.line == 0 {
                return Err(format!("refusal without a line: {e}"));
            }
            super::printable("locustfile refusal", &e.to_string())?;
        }
    }
    if let Err(e) = parse_conf("locust/locust.conf", &text) {
        super::printable("locust.conf refusal", &e.to_string())?;
    }
    Ok(())
}
