#ifndef FWL_TESTS_H
#define FWL_TESTS_H

#include "agent_vectors.h"

const char *sample_bundle(void);
void test_json(void);
void test_sha256(void);
void test_util(void);
void test_bundle(void);
void test_record(void);
void test_form(void);
void test_agent_install(void);
void test_agent_refuse(void);
void test_agent_image(void);
void test_agent_resume(void);
void test_agent_rollback(void);
void test_agent_power_cut(void);
void test_agent_storage(void);
void test_agent_serve(void);

#endif
